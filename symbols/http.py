"""HTTP(S) symbol servers: one GET at a time, bounded in time and size, cancellable.

This is the transport only; ``store.py`` decides which URLs to ask for
(``name/KEY/name``, the compressed ``name/KEY/nam_``, ``name/KEY/file.ptr``,
symbols.md §3.2) and files what comes back into a cache. What a request does:

* ``User-Agent: Microsoft-Symbol-Server/10.0.0.0``, as symsrv sends, since
  symbol servers are written for symsrv;
* proxies from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``)
  unless ``HttpOptions.proxies`` says otherwise, and certificate checks with
  the system's trust store unless ``HttpOptions.ssl_context`` replaces it;
* at most ``max_redirects`` redirects, to ``http`` or ``https`` URLs only;
* no wait longer than ``timeout``: connecting and the response head run in a
  worker thread the caller stops waiting for (name resolution included), and
  every read of the body has the same socket timeout;
* ``cancelled()`` is polled while waiting for the head and between chunks of the
  body, ``progress(done, total)`` is called after each chunk; a cancelled
  download raises ``DownloadCancelled``;
* a body longer than ``max_bytes`` or shorter than its Content-Length is a
  ``DownloadError``.

404 and 410 mean "not on this server" and are not errors. A server that cannot
be reached (no route, refused, time-out, name unknown, TLS failure) is marked
unreachable for ``retry_after`` seconds, with one warning, so a module list of a
hundred drivers does not wait a hundred time-outs.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import SymbolError, SymbolPathError

__all__ = ["USER_AGENT", "MICROSOFT_SYMBOL_SERVER", "symfix_path", "default_expansion_root", "is_remote",
           "HttpOptions", "DownloadCancelled", "DownloadError", "Download",
           "open_download", "read_small", "is_unreachable", "forget_unreachable"]

log = logging.getLogger(__name__)

USER_AGENT = "Microsoft-Symbol-Server/10.0.0.0"
MICROSOFT_SYMBOL_SERVER = "https://msdl.microsoft.com/download/symbols"
_NOT_THERE = (404, 410)
_POLL = 0.05                    # seconds between cancellation checks while a request opens


class DownloadCancelled(Exception):
    """The user cancelled a download.

    Not a ``SymbolError``: loaders turn those into "no symbols", while a
    cancellation has to reach whoever asked for it (``.reload /f``).
    """


class DownloadError(SymbolError):
    """A transfer failed part-way (dropped, too long, too short); nothing was kept."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How HTTP symbol stores are used. The defaults suit msdl.microsoft.com."""

    timeout: float = 30.0
    max_bytes: int = 1 << 30
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    proxies: Mapping[str, str] | None = None
    ssl_context: ssl.SSLContext | None = None
    retry_after: float = 300.0
    chunk_size: int = 1 << 16
    progress: Callable[[int, int | None], object] | None = None
    cancelled: Callable[[], bool] | None = None


def default_expansion_root(env: Mapping[str, str] | None = None) -> str | None:
    """The user's symbol cache: ``$XDG_CACHE_HOME/kdcon/sym`` or ``~/.cache/kdcon/sym``.

    Downloads and expanded compressed entries go there when the path names no
    cache of its own.
    """
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        # A relative XDG_CACHE_HOME is invalid and ignored (XDG Base Directory spec).
        home = env.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "kdcon", "sym")


def symfix_path(cache: str | None = None) -> str:
    """What ``.symfix [cache]`` sets: ``srv*<cache>*https://msdl.microsoft.com/download/symbols``.

    Without ``cache`` the user's symbol cache (``default_expansion_root()``) is
    used; with none at all (no home directory), the server alone, whose
    downloads then have nowhere to go and are refused with a warning.
    """
    where = cache.strip() if cache and cache.strip() else default_expansion_root()
    if where is None:
        return f"srv*{MICROSOFT_SYMBOL_SERVER}"
    if "*" in where or ";" in where:
        raise SymbolPathError(f"{where!r}: a cache directory cannot contain '*' or ';'")
    return f"srv*{where}*{MICROSOFT_SYMBOL_SERVER}"


def is_remote(location: str) -> bool:
    """True for an HTTP(S) store location."""
    return location.lower().startswith(("http://", "https://"))


_down: dict[str, float] = {}
_down_lock = threading.Lock()


def _store_key(store: str) -> str:
    return store.rstrip("/").lower()


def is_unreachable(store: str) -> bool:
    """True while ``store`` is marked unreachable after a failed connection."""
    with _down_lock:
        until = _down.get(_store_key(store))
        if until is None:
            return False
        if time.monotonic() >= until:
            del _down[_store_key(store)]
            return False
        return True


def forget_unreachable(store: str | None = None) -> None:
    """Try ``store`` (or every store) again on the next lookup."""
    with _down_lock:
        if store is None:
            _down.clear()
        else:
            _down.pop(_store_key(store), None)


def _mark_unreachable(store: str, reason: str, options: HttpOptions) -> None:
    with _down_lock:
        _down[_store_key(store)] = time.monotonic() + options.retry_after
    log.warning("%s: unreachable (%s); not asked again for %.0f s", store, reason, options.retry_after)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handling, with our limit on the number of hops and to http(s) only.

    urllib's own limit counts distinct URLs, which lets a loop between two URLs
    run eight times; this one counts every redirect of a request.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlsplit(newurl).scheme.lower()
        if scheme and scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a {scheme} URL refused", headers, fp)
        hops = getattr(req, "kdcon_redirects", 0) + 1
        if hops > self.limit:
            raise urllib.error.HTTPError(req.full_url, code, f"more than {self.limit} redirects", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.kdcon_redirects = hops
        return new


def _opener(options: HttpOptions) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(dict(options.proxies) if options.proxies is not None else None),
        _Redirects(options.max_redirects),
    ]
    if options.ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=options.ssl_context))
    return urllib.request.build_opener(*handlers)


def _check_cancelled(options: HttpOptions) -> None:
    if options.cancelled is not None and options.cancelled():
        raise DownloadCancelled("download cancelled")


class Download:
    """An answered GET whose body has not been read yet; close it or use ``with``."""

    def __init__(self, url: str, response, options: HttpOptions) -> None:
        self.url = url
        self.final_url = response.geturl()
        self.options = options
        self._response = response
        length = response.headers.get("Content-Length")
        self.total = int(length) if length and length.strip().isdigit() else None

    def copy_to(self, write: Callable[[bytes], object], *, limit: int | None = None) -> int:
        """Pass the body to ``write`` chunk by chunk; returns its length.

        ``limit`` (default ``max_bytes``) bounds the body; a longer one, a body
        shorter than its Content-Length or a failed read raise ``DownloadError``.
        """
        options = self.options
        limit = options.max_bytes if limit is None else limit
        if self.total is not None and self.total > limit:
            raise DownloadError(f"{self.total} bytes exceed the {limit}-byte limit")
        done = 0
        if options.progress is not None:
            options.progress(0, self.total)
        while True:
            _check_cancelled(options)
            try:
                chunk = self._response.read1(options.chunk_size)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"transfer failed after {done} bytes ({_describe(exc)})") from None
            if not chunk:
                break
            done += len(chunk)
            if done > limit:
                raise DownloadError(f"more than the {limit}-byte limit")
            write(chunk)
            if options.progress is not None:
                options.progress(done, self.total)
        if self.total is not None and done != self.total:
            raise DownloadError(f"connection closed after {done} of {self.total} bytes")
        return done

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    """One line for a failed connection: the socket's reason rather than urllib's wrapper."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        if not isinstance(exc.reason, BaseException):
            return str(exc.reason)
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not known: {exc.strerror}"
    return str(exc) or type(exc).__name__


class _Opening:
    """``opener.open`` in a worker thread, so that the caller can stop waiting."""

    def __init__(self, opener: urllib.request.OpenerDirector, request: urllib.request.Request,
                 timeout: float) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self.response = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(opener, request, timeout),
                                        name="kdcon-symbol-http", daemon=True)
        self._thread.start()

    def _run(self, opener, request, timeout) -> None:
        try:
            response = opener.open(request, timeout=timeout)
        except BaseException as exc:  # handed to the waiting caller as it is
            with self._lock:
                self.error = exc
                if self._abandoned and isinstance(exc, urllib.error.HTTPError):
                    exc.close()
        else:
            with self._lock:
                if self._abandoned:
                    response.close()
                else:
                    self.response = response
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        return self._done.wait(seconds)

    def abandon(self) -> None:
        """The caller gives up; whatever arrives later is closed."""
        with self._lock:
            self._abandoned = True
            if self.response is not None:
                self.response.close()
                self.response = None


def open_download(url: str, options: HttpOptions, *, store: str) -> Download | None:
    """GET ``url`` of ``store``; None when the server does not have it or cannot be used.

    Problems other than 404/410 are logged once each; ``DownloadCancelled``
    is raised when ``options.cancelled()`` says so.
    """
    _check_cancelled(options)
    if is_unreachable(store):
        return None
    request = urllib.request.Request(url, headers={"User-Agent": options.user_agent,
                                                   "Accept-Encoding": "identity"})
    try:
        opening = _Opening(_opener(options), request, options.timeout)
    except RuntimeError as exc:
        log.warning("%s: cannot start a request: %s", url, exc)
        return None
    deadline = time.monotonic() + options.timeout
    while True:
        remaining = deadline - time.monotonic()
        if opening.wait(min(_POLL, max(remaining, 0)) if options.cancelled else max(remaining, 0)):
            break
        if options.cancelled is not None and options.cancelled():
            opening.abandon()
            raise DownloadCancelled("download cancelled")
        if time.monotonic() >= deadline:
            opening.abandon()
            _mark_unreachable(store, f"no answer within {options.timeout:g} s", options)
            return None
    error = opening.error
    if error is None:
        return Download(url, opening.response, options)
    if isinstance(error, urllib.error.HTTPError):
        error.close()
        if error.code in _NOT_THERE:
            log.debug("%s: not on the server (HTTP %d)", url, error.code)
        else:
            log.warning("%s: HTTP %d %s", url, error.code, error.reason)
        return None
    if not isinstance(error, Exception):
        raise error
    # Refused, reset, no route, unknown host, TLS failure, a broken response
    # head, an unusable URL: asking again soon would fail the same way.
    reason = _describe(error)
    if reason == "timed out":
        reason = f"no answer within {options.timeout:g} s"
    _mark_unreachable(store, reason, options)
    return None


def read_small(url: str, options: HttpOptions, *, store: str, limit: int) -> bytes | None:
    """The whole body of ``url`` when it is at most ``limit`` bytes; None when absent or unusable."""
    download = open_download(url, options, store=store)
    if download is None:
        return None
    pieces: list[bytes] = []
    with download:
        try:
            download.copy_to(pieces.append, limit=limit)
        except DownloadError as exc:
            log.warning("%s: %s", url, exc)
            return None
    return b"".join(pieces)
