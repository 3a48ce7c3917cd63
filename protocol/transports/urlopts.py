"""Split our handlers' URLs into a body and options, with one-line errors.

``scheme://body?flag&key=value``: flags are options without ``=``. Unknown options and
malformed values raise ``LinkError`` quoting the handler's ``# URL format:`` line, so a
typo in a URL never reaches a socket call. Not here: opening anything.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .errors import LinkError

__all__ = ["split_url"]


def split_url(url: str, scheme: str, known: set[str], url_format: str) -> tuple[str, dict[str, str]]:
    """``(body, options)`` of ``url``; flags map to ``""``."""
    prefix = f"{scheme}://"
    if not url.lower().startswith(prefix):
        raise LinkError(f"expected {url_format}, got {url!r}")
    body, _, query = url[len(prefix) :].partition("?")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        key = key.strip().lower()
        if key not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise LinkError(f"unknown option {key!r} in {url!r} (options: {choices}; format {url_format})")
        options[key] = value
    return body, options
