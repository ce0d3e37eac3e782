"""HTTPS on the clinic's LAN: staff PINs, session cookies and patient data never cross a
shared Wi-Fi in clear.

At enrolment the node gets a TLS server certificate from its region for
`<facility-code>.local` and its LAN addresses (edge_node.enrolment: tls-key.pem, born here,
and tls-cert.pem). `dmed-node serve` then serves HTTPS with cheroot (waitress speaks no TLS),
and its plain HTTP port only redirects. Every cookie is marked Secure and HSTS is sent.
Terminals and kiosks trust the national root, so no warning is ever shown. The demo stays on
plain HTTP on loopback.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask, Response

log = logging.getLogger(__name__)

# A year; browsers remember to use HTTPS for this node from the first visit on.
HSTS = "max-age=31536000"
TLS_THREADS = 8  # as waitress's SERVER_THREADS: pages are CPU-bound Python
REDIRECT_STATUS = "308 Permanent Redirect"  # keeps the method and body of a form post


def secure_transport(app: Flask) -> Flask:
    """Secure cookies and HSTS on every response of an app served over HTTPS."""
    app.config.update(SESSION_COOKIE_SECURE=True)

    @app.after_request
    def _secure(response: Response) -> Response:
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


def tls_server(app: Any, host: str, port: int, cert_file: Path, key_file: Path
               ) -> wsgi.Server:
    """A cheroot HTTPS server (not started: call .start() or .safe_start())."""
    server = wsgi.Server((host, port), app, numthreads=TLS_THREADS,
                         server_name="dmed-node")
    adapter = BuiltinSSLAdapter(str(cert_file), str(key_file))
    adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
    server.ssl_adapter = adapter
    return server


def redirect_app(https_port: int):
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
