"""HTTPS on a LAN, shared by the node (`dmed-node serve`) and the provisioning station
(`dmed-provision serve`): cheroot with a certificate from the region (waitress speaks no
TLS), a plain HTTP port that only redirects, Secure cookies and HSTS.

A renewed certificate takes effect without a restart: renewal installs the new files by
rename (edge_node.enrolment), and the adapter looks at the files' identity before each new
connection; when they changed it builds a new SSL context and swaps it in. Connections
already open keep the context they were made with, so nothing in flight is dropped.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

log = logging.getLogger(__name__)

# A year; browsers remember to use HTTPS for this host from the first visit on.
HSTS = "max-age=31536000"
TLS_THREADS = 8  # as waitress's SERVER_THREADS: pages are CPU-bound Python
REDIRECT_STATUS = "308 Permanent Redirect"  # keeps the method and body of a form post
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2

FileStamp = tuple[tuple[int, int, int, int], ...]


def file_stamp(*paths: Path) -> FileStamp | None:
    """What changes when a file is replaced or rewritten; None while one is missing (the
    moment between renewal's two renames)."""
    try:
        stats = [os.stat(p) for p in paths]
    except OSError:
        return None
    return tuple((s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


class ReloadingSSLAdapter(BuiltinSSLAdapter):
    """cheroot's adapter, reading its certificate and key again when their files change.

    The check is two stat() calls per new connection (microseconds beside a TLS handshake),
    so the first connection after a renewal already gets the new certificate. A pair that
    cannot be loaded (half written, key and certificate not matching yet) is logged and the
    current one kept: the server never stops serving for a bad renewal.
    """

    def __init__(self, cert_file: str | Path, key_file: str | Path) -> None:
        super().__init__(str(cert_file), str(key_file))
        self.context.minimum_version = MINIMUM_TLS
        self.files = (Path(cert_file), Path(key_file))
        self._loaded = file_stamp(*self.files)
        self._lock = threading.Lock()
        self.reloads = 0

    def wrap(self, sock: Any) -> Any:
        self.reload_if_changed()
        return super().wrap(sock)

    def reload_if_changed(self) -> bool:
        stamp = file_stamp(*self.files)
        if stamp is None or stamp == self._loaded:
            return False
        with self._lock:
            if stamp == self._loaded:
                return False
            try:
                fresh = BuiltinSSLAdapter(*(str(f) for f in self.files))
            except (OSError, ssl.SSLError, ValueError) as e:
                log.warning("the renewed TLS certificate cannot be loaded yet (%s); "
                            "serving with the current one", e)
                return False
            fresh.context.minimum_version = MINIMUM_TLS
            self.context = fresh.context
            # The SSL_SERVER_* entries cheroot adds to each request describe the new one too.
            self._server_env = fresh._server_env  # type: ignore[attr-defined]
            self._loaded = stamp
            self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.files[0])
        return True


def tls_server(app: Any, host: str, port: int, cert_file: Path, key_file: Path, *,
               server_name: str = "dmed-node", threads: int = TLS_THREADS) -> wsgi.Server:
    """A cheroot HTTPS server (not started: call .start() or .safe_start()) that follows
    its certificate files."""
    server = wsgi.Server((host, port), app, numthreads=threads, server_name=server_name)
    server.ssl_adapter = ReloadingSSLAdapter(cert_file, key_file)
    return server


def serve_https(server: wsgi.Server, redirect: Any = None) -> None:
    """Serve `server` until it stops, with `redirect` (a WSGI server of redirect_app, or
    None) answering plain HTTP beside it on a thread of its own."""
    if redirect is not None:
        threading.Thread(target=redirect.run, daemon=True, name="http-redirect").start()
    try:
        server.safe_start()
    finally:
        if redirect is not None:
            redirect.close()


def secure_transport(app: Any) -> Any:
    """Secure cookies and HSTS on every response of a Flask app served over HTTPS."""
    app.config.update(SESSION_COOKIE_SECURE=True)

    @app.after_request
    def _secure(response: Any) -> Any:
        response.headers["Strict-Transport-Security"] = HSTS
        cookies = response.headers.getlist("Set-Cookie")
        if cookies:
            response.headers.remove("Set-Cookie")
            for cookie in cookies:
                if "; secure" not in cookie.lower():
                    cookie += "; Secure"
                response.headers.add("Set-Cookie", cookie)
        return response

    return app


def redirect_app(https_port: int) -> Any:
    """A WSGI app that sends every request to the same path over HTTPS."""
    def app(environ: dict, start_response: Any) -> list[bytes]:
        host = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").split(":")[0]
        if host.startswith("["):  # an IPv6 literal
            host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        target = f"https://{host}:{https_port}{environ.get('PATH_INFO', '/')}"
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        start_response(REDIRECT_STATUS, [("Location", target), ("Content-Length", "0"),
                                         ("Strict-Transport-Security", HSTS)])
        return [b""]
    return app
