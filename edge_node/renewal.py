"""Certificate renewal started by the node itself when RENEW_BEFORE_DAYS remain, without
downtime: a new key and a request signed by the current key go to the provisioning station;
the node keeps serving with its current certificate until the region approves; the answer is
installed by one rename and the running node switches to the new credentials in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cryptography import x509

from sync_protocol.enrolment import Enrolment, EnrolmentError, read_enrolment

from . import enrolment
from .web.context import CREDENTIALS_KEY, SYNC_AGENT_KEY

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10.0
REQUESTS_PATH = "/enrol/requests"
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
            if not (renew_dir / enrolment.REQUEST_FILE).exists():
                current = read_enrolment(enrolment.enrolment_dir(self.data_dir))
                if not enrolment.renewal_due(current, now):
                    return NOT_DUE
                pending = enrolment.start_renewal(self.data_dir, now=now,
                                                  lan_ips=self._lan_ips())
                response = self.session.post(self.station + REQUESTS_PATH,
                                             json=pending.request, timeout=HTTP_TIMEOUT)
                if response.status_code >= 400:
                    log.warning("the station refused the renewal request: %s", response.text)
                    return REFUSED
                log.info("renewal requested: code %s, fingerprint %s", pending.code,
                         pending.fingerprint)
                return REQUESTED
            pending = enrolment.pending(renew_dir)
            response = self.session.get(f"{self.station}{REQUESTS_PATH}/{pending.request_id}",
                                        timeout=HTTP_TIMEOUT)
            if response.status_code == 404:  # made while the station was unreachable
                self.session.post(self.station + REQUESTS_PATH, json=pending.request,
                                  timeout=HTTP_TIMEOUT)
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
