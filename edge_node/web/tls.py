"""HTTPS on the clinic's LAN: staff PINs, session cookies and patient data never cross a
shared Wi-Fi in clear.

At enrolment the node gets a TLS server certificate from its region for
`<facility-code>.local` and its LAN addresses (edge_node.enrolment: tls-key.pem, born here,
and tls-cert.pem). `dmed-node serve` then serves HTTPS with cheroot (waitress speaks no TLS),
and its plain HTTP port only redirects. Every cookie is marked Secure and HSTS is sent.
Terminals and kiosks trust the national root, so no warning is ever shown. The demo stays on
plain HTTP on loopback. The machinery is shared with the provisioning station and follows a
renewed certificate without a restart (sync_protocol.tls_serving).
"""

from __future__ import annotations

from sync_protocol.tls_serving import (
    HSTS,
    REDIRECT_STATUS,
    TLS_THREADS,
    ReloadingSSLAdapter,
    redirect_app,
    secure_transport,
    tls_server,
)

__all__ = ["HSTS", "REDIRECT_STATUS", "TLS_THREADS", "ReloadingSSLAdapter", "redirect_app",
           "secure_transport", "tls_server"]
