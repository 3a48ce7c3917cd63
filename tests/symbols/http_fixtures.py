"""A symbol server on 127.0.0.1 for the HTTP store tests (no tests here).

It serves a temporary store directory under ``/download/symbols`` the way
msdl.microsoft.com does (plain files, ``.pd_`` cabinets, ``file.ptr``, 404 for the
rest) and misbehaves on request: redirects, a head that never comes (until the
test ends), a body cut short, a body without Content-Length, a status of choice.
It records every request with its headers, and acts as a forward proxy when
asked for an absolute URL. Handler threads are joined when it stops.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from tests.oracles import require_tool

PREFIX = "/download/symbols"


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    proxied: bool


@dataclass
class Route:
    """What the server does for one path instead of serving the store."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False              # never answer (until the server stops)
    cut_after: int | None = None     # send this many body bytes of a full Content-Length, then hang up
    no_length: bool = False          # close-delimited body, no Content-Length


class SymbolServer:
    def __init__(self, root: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

            def do_GET(self):
                server._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="symbol-server")

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return self.base + PREFIX

    def paths(self) -> list[str]:
        with self._lock:
            return [s.path for s in self.seen]

    def __enter__(self) -> SymbolServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        target = handler.path
        proxied = target.startswith(("http://", "https://"))
        if proxied:
            target = urlsplit(target).path
        with self._lock:
            self.seen.append(Seen(target, dict(handler.headers.items()), proxied))
        try:
            self._answer(handler, target)
        except OSError:
            pass                    # the client gave up first: what the stalling routes are for

    def _answer(self, handler: BaseHTTPRequestHandler, target: str) -> None:
        route = self.routes.get(target)
        if route is None:
            route = self._from_store(target)
        if route.stall:
            self.stalled.set()
            self.release.wait(60)
            return
        handler.send_response(route.status)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if not route.no_length:
            handler.send_header("Content-Length", str(len(route.body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        body = route.body if route.cut_after is None else route.body[:route.cut_after]
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    def _from_store(self, target: str) -> Route:
        if not target.startswith(PREFIX + "/"):
            return Route(404, b"not here")
        parts = [unquote(p) for p in target[len(PREFIX) + 1:].split("/")]
        if any(p in ("", ".", "..") for p in parts):
            return Route(404, b"not here")
        path = os.path.join(self.root, *parts)
        if not os.path.isfile(path):
            return Route(404, b"not here")
        with open(path, "rb") as handle:
            return Route(200, handle.read(), {"Content-Type": "application/octet-stream"})


def self_signed(directory: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a certificate made for 127.0.0.1."""
    openssl = require_tool("openssl")
    os.makedirs(directory, exist_ok=True)
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client
