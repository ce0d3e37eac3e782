"""Certificate renewal started by the node itself when RENEW_BEFORE_DAYS remain, without
downtime: a new key and a request signed by the current key go to the provisioning station;
the node keeps serving with its current certificate until the region approves; the answer is
installed by one rename and the running node switches to the new credentials in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sync_protocol.enrolment import BUNDLE_FILES, Enrolment, EnrolmentError, read_enrolment
from sync_protocol.tls_serving import file_stamp

from . import enrolment
from .web.context import CREDENTIALS_KEY, SYNC_AGENT_KEY

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10.0
REQUESTS_PATH = "/enrol/requests"
# The national root(s) of the node's trust list, as a file for the HTTPS client: the station's
# certificate is checked against these only, never against a public CA bundle.
STATION_ROOTS_FILE = "station-roots.pem"
# run_once answers
NOT_DUE, REQUESTED, WAITING, RENEWED, REFUSED, UNREACHABLE = (
    "not_due", "requested", "waiting", "renewed", "refused", "unreachable")


class Renewal:
    def __init__(self, data_dir: Path, station_url: str,
                 on_renewed: Callable[[Enrolment], None], *, session: Any = requests) -> None:
        self.data_dir = Path(data_dir)
        self.station = station_url.rstrip("/")
        self.on_renewed = on_renewed
        self.session = session

    def run_once(self, now: datetime | None = None) -> str:
        now = datetime.now(UTC) if now is None else now
        renew_dir = self.data_dir / enrolment.RENEW_DIR
        try:
            verify = self._verify()
            if not (renew_dir / enrolment.REQUEST_FILE).exists():
                current = read_enrolment(enrolment.enrolment_dir(self.data_dir))
                if not (enrolment.renewal_due(current, now) or self._tls_due(now)):
                    return NOT_DUE
                pending = enrolment.start_renewal(self.data_dir, now=now,
                                                  lan_ips=self._lan_ips())
                response = self.session.post(self.station + REQUESTS_PATH,
                                             json=pending.request, timeout=HTTP_TIMEOUT,
                                             verify=verify)
                if response.status_code >= 400:
                    log.warning("the station refused the renewal request: %s", response.text)
                    return REFUSED
                log.info("renewal requested: code %s, fingerprint %s", pending.code,
                         pending.fingerprint)
                return REQUESTED
            pending = enrolment.pending(renew_dir)
            response = self.session.get(f"{self.station}{REQUESTS_PATH}/{pending.request_id}",
                                        timeout=HTTP_TIMEOUT, verify=verify)
            if response.status_code == 404:  # made while the station was unreachable
                self.session.post(self.station + REQUESTS_PATH, json=pending.request,
                                  timeout=HTTP_TIMEOUT, verify=verify)
                return REQUESTED
            state = response.json().get("state") if response.ok else None
        except requests.RequestException as e:
            log.warning("provisioning station unreachable for renewal: %s", e)
            return UNREACHABLE
        if state == "refused":
            return REFUSED
        if state != "approved":
            return WAITING
        try:
            renewed = enrolment.install_answer(self.data_dir, response.json()["answer"], now=now)
        except EnrolmentError:
            log.exception("the renewal answer could not be installed")
            return REFUSED
        self.on_renewed(renewed)
        log.info("certificate renewed: %s until %s", renewed.kid.hex(),
                 renewed.cert.not_valid_after_utc)
        return RENEWED

    def _tls_due(self, now: datetime) -> bool:
        """The TLS certificate lives 397 days (browsers refuse longer), the node's two years:
        renewing for either renews both."""
        path = enrolment.enrolment_dir(self.data_dir) / enrolment.TLS_CERT_FILE
        if not path.exists():
            return False
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
        return (cert.not_valid_after_utc - now).days <= enrolment.RENEW_BEFORE_DAYS

    def _verify(self) -> str | bool:
        if not self.station.startswith("https://"):
            return True
        roots = read_enrolment(enrolment.enrolment_dir(self.data_dir)).trust_list.roots
        pem = b"".join(root.public_bytes(Encoding.PEM) for root in roots)
        path = self.data_dir / STATION_ROOTS_FILE
        if not path.exists() or path.read_bytes() != pem:
            path.write_bytes(pem)
        return str(path)

    def _lan_ips(self) -> list[str]:
        """The addresses the current TLS certificate names, kept for the new one."""
        path = enrolment.enrolment_dir(self.data_dir) / enrolment.TLS_CERT_FILE
        if not path.exists():
            return []
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def switch_credentials(app: Any, renewed: Enrolment) -> None:
    """The running node signs with the new key from now on (no restart, no downtime)."""
    app.extensions[CREDENTIALS_KEY] = renewed
    agent = app.extensions.get(SYNC_AGENT_KEY)
    if agent is not None:
        agent.credentials = renewed
        agent.client.credentials = renewed


def follow_renewals(app: Any, bundle: Path) -> Any:
    """The app re-reads its credentials when the certificate on disk changes.

    Renewal runs in one process (the background jobs) and switches that process's app; the
    other server workers learn of it here, before their next request, so none of them goes on
    signing with the retired key. A stat() per request; the files are read only on a change.
    """
    bundle = Path(bundle)
    watched = bundle / BUNDLE_FILES["cert"] if bundle.is_dir() else bundle
    lock = threading.Lock()
    seen = [file_stamp(watched)]

    @app.before_request
    def _follow() -> None:
        stamp = file_stamp(watched)
        if stamp is None or stamp == seen[0]:  # None: between renewal's two renames
            return
        with lock:
            if stamp == seen[0]:
                return
            try:
                renewed = read_enrolment(bundle)
            except (EnrolmentError, OSError) as e:
                log.warning("the renewed credentials cannot be read yet: %s", e)
                return
            seen[0] = stamp
            switch_credentials(app, renewed)
        log.info("credentials reloaded after renewal: %s", renewed.kid.hex())

    return app

