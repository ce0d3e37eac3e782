"""Enrolment with a key born on the node: key, CSR, short code, answer, facility.

    data_dir/enrolment/key.pem        the node's private key, 0600 from its first byte; it
                                      never leaves this directory (no command reads it out)
    data_dir/enrolment/request.json   the request sent to the provisioning station
    data_dir/enrolment/code           the short code shown to the operator (0600)
    data_dir/enrolment/{cert.pem, chain.pem, trust-list.json, facility.json}
                                      written from the station's answer: the directory is
                                      then an enrolment bundle, read by credentials.py

A renewal works the same in data_dir/enrolment.renew/ (its request also signed by the current
key) and replaces enrolment/ in one rename when the answer is installed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sync_protocol.certificates import NodeIdentity, identity_of
from sync_protocol.enrolment import (
    BUNDLE_FILES,
    FACILITY_FILE,
    Enrolment,
    EnrolmentError,
    read_enrolment,
    read_private_key,
)
from sync_protocol.enrolment_request import (
    ANSWER_FORMAT,
    make_request,
    make_tls_csr,
    new_code,
    public_key_fingerprint,
)
from sync_protocol.facility_record import FacilityRecord, verify_facility
from sync_protocol.identifiers import new_ulid
from sync_protocol.json_body import parse_json

from .credentials import BUNDLE_NAME

log = logging.getLogger(__name__)

RENEW_DIR = BUNDLE_NAME + ".renew"
BACKUP_KEY_FILE = "backup-key.pub.pem"  # the region's public backup key (edge_node.backup)
TLS_KEY_FILE = "tls-key.pem"  # the LAN server's key, born here like the node's
TLS_CERT_FILE = "tls-cert.pem"  # its certificate, then the region's
REQUEST_FILE = "request.json"
CODE_FILE = "code"
SECRET_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# A node asks for a new certificate when this many days of the old one remain.
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class PendingEnrolment:
    directory: Path
    request: dict[str, Any]
    code: str
    fingerprint: str
    identity: NodeIdentity

    @property
    def request_id(self) -> str:
        return str(self.request["request_id"])


def enrolment_dir(data_dir: Path) -> Path:
    return Path(data_dir) / BUNDLE_NAME


def is_enrolled(data_dir: Path) -> bool:
    return (enrolment_dir(data_dir) / BUNDLE_FILES["cert"]).exists()


def start(data_dir: Path, identity: NodeIdentity, *, now: datetime | None = None,
          lan_ips: list[str] | None = None) -> PendingEnrolment:
    """Make the node's key and its request; refuses if this node has a key already.

    The request also asks for a TLS server certificate (a second key, tls-key.pem) for
    `<facility-code>.local` and `lan_ips`."""
    directory = enrolment_dir(data_dir)
    if (directory / BUNDLE_FILES["key"]).exists():
        raise EnrolmentError("This node has a key already (%(path)s); show the pending "
                             "request with `dmed-node enrol --show`.", code="already_started",
                             path=str(directory))
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return _new_request(directory, identity, now=now, lan_ips=lan_ips)


def start_renewal(data_dir: Path, *, now: datetime | None = None,
                  lan_ips: list[str] | None = None) -> PendingEnrolment:
    """A new key and a request signed by the current key, for the same identity."""
    current = read_enrolment(enrolment_dir(data_dir))
    directory = Path(data_dir) / RENEW_DIR
    if (directory / BUNDLE_FILES["key"]).exists():
        return pending(directory)
    directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return _new_request(directory, current.identity, now=now, current=current,
                        lan_ips=lan_ips)


def renewal_due(enrolment: Enrolment, now: datetime) -> bool:
    return (enrolment.cert.not_valid_after_utc - now).days <= RENEW_BEFORE_DAYS


def _new_request(directory: Path, identity: NodeIdentity, *, now: datetime | None,
                 current: Enrolment | None = None,
                 lan_ips: list[str] | None = None) -> PendingEnrolment:
    now = datetime.now(UTC) if now is None else now
    key = ec.generate_private_key(ec.SECP256R1())  # ES256: prescriptions need P-256
    _write_secret(directory / BUNDLE_FILES["key"], _pem(key))
    tls_key = ec.generate_private_key(ec.SECP256R1())
    _write_secret(directory / TLS_KEY_FILE, _pem(tls_key))
    tls_csr = make_tls_csr(tls_key, tls_name(identity.facility_code), list(lan_ips or []))
    code = new_code()
    request = make_request(key, identity, code, new_ulid(), now,
                           current_key=current.key if current else None,
                           current_cert=current.cert if current else None, tls_csr=tls_csr)
    _write_secret(directory / CODE_FILE, code.encode("ascii"))
    (directory / REQUEST_FILE).write_text(json.dumps(request, indent=2), encoding="utf-8")
    log.info("enrolment request %s made for node %s", request["request_id"], identity.node_id)
    return PendingEnrolment(directory, request, code, public_key_fingerprint(key.public_key()),
                            identity)


def pending(directory: Path) -> PendingEnrolment:
    """The request waiting in `directory` (enrolment/ or enrolment.renew/)."""
    try:
        request = parse_json((directory / REQUEST_FILE).read_text(encoding="utf-8"))
        code = (directory / CODE_FILE).read_text(encoding="ascii").strip()
    except (OSError, ValueError) as e:
        raise EnrolmentError("No enrolment request waits in %(path)s; run `dmed-node enrol` "
                             "first.", code="no_request", path=str(directory)) from e
    key = read_private_key(directory / BUNDLE_FILES["key"])
    csr = x509.load_pem_x509_csr(request["csr"].encode("ascii"))
    return PendingEnrolment(directory, request, code, public_key_fingerprint(key.public_key()),
                            identity_of(csr))  # type: ignore[arg-type]


def install_answer(data_dir: Path, answer: Any, *, now: datetime | None = None) -> Enrolment:
    """Check the station's answer against our key and request, then install it.

    Nothing is written unless the certificate is for our key and identity, chains to the
    trust list it came with, and the facility record is signed by our region.
    """
    now = datetime.now(UTC) if now is None else now
    renewing = (Path(data_dir) / RENEW_DIR / REQUEST_FILE).exists()
    directory = Path(data_dir) / RENEW_DIR if renewing else enrolment_dir(data_dir)
    waiting = pending(directory)
    if not isinstance(answer, dict) or answer.get("format") != ANSWER_FORMAT:
        raise EnrolmentError("This is not an answer from the provisioning station.",
                             code="invalid_answer")
    if answer.get("request_id") != waiting.request_id:
        raise EnrolmentError("This answer is for request %(other)s, not for this node's "
                             "request %(ours)s.", code="wrong_answer",
                             other=answer.get("request_id"), ours=waiting.request_id)
    try:
        cert = x509.load_pem_x509_certificate(str(answer["cert"]).encode("ascii"))
        chain = [x509.load_pem_x509_certificate(str(c).encode("ascii"))
                 for c in answer["chain"]]
        trust_json = json.dumps(answer["trust_list"], indent=2)
    except (KeyError, TypeError, ValueError) as e:
        raise EnrolmentError("The station's answer cannot be read.", code="invalid_answer") from e
    staged = directory / ".answer"
    staged.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    (staged / BUNDLE_FILES["cert"]).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (staged / BUNDLE_FILES["chain"]).write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (staged / BUNDLE_FILES["trust_list"]).write_text(trust_json, encoding="utf-8")
    os.link(directory / BUNDLE_FILES["key"], staged / BUNDLE_FILES["key"])
    try:
        enrolment = read_enrolment(staged)  # the key must belong to the certificate
        if enrolment.identity != waiting.identity:
            raise EnrolmentError("The certificate names %(got)s, but this node asked for "
                                 "%(asked)s.", code="wrong_identity",
                                 got=enrolment.identity.node_id, asked=waiting.identity.node_id)
        enrolment.trust_list.verify_chain(enrolment.cert, now).raise_if_refused()
        facility = answer.get("facility")
        if facility is not None:
            verify_facility(facility, chain[0])
            (staged / FACILITY_FILE).write_text(json.dumps(facility, ensure_ascii=False,
                                                           indent=2), encoding="utf-8")
    except Exception:
        for file in staged.iterdir():
            file.unlink()
        staged.rmdir()
        raise
    tls_cert = answer.get("tls_cert")
    if tls_cert:
        _stage_tls(staged, directory, str(tls_cert), chain)
    backup_key = answer.get("backup_key")
    if isinstance(backup_key, str) and backup_key.startswith("-----BEGIN PUBLIC KEY"):
        (staged / BACKUP_KEY_FILE).write_text(backup_key, encoding="ascii")
    for name in (BUNDLE_FILES["cert"], BUNDLE_FILES["chain"], BUNDLE_FILES["trust_list"],
                 FACILITY_FILE, BACKUP_KEY_FILE, TLS_CERT_FILE):
        if (staged / name).exists():
            os.replace(staged / name, directory / name)
    (staged / BUNDLE_FILES["key"]).unlink()
    staged.rmdir()
    (directory / REQUEST_FILE).unlink()
    (directory / CODE_FILE).unlink()
    if renewing:
        _swap_in_renewal(Path(data_dir), now)
    log.info("enrolment installed: certificate %s", enrolment.kid.hex())
    return read_enrolment(enrolment_dir(data_dir))


def _swap_in_renewal(data_dir: Path, now: datetime) -> None:
    """The renewed directory replaces the old one by renames: a reader sees one or the other."""
    retired = data_dir / f"{BUNDLE_NAME}.retired-{now.strftime('%Y%m%d%H%M%S')}"
    os.rename(enrolment_dir(data_dir), retired)
    os.rename(data_dir / RENEW_DIR, enrolment_dir(data_dir))
    # The old key can sign nothing valid once the new certificate is used; remove it.
    (retired / BUNDLE_FILES["key"]).unlink(missing_ok=True)
    (retired / TLS_KEY_FILE).unlink(missing_ok=True)


def facility_of(enrolment: Enrolment) -> FacilityRecord | None:
    """The facility the region provisioned, checked against the node's region certificate."""
    if enrolment.facility is None:
        return None
    if not enrolment.chain:
        raise EnrolmentError("The enrolment has no region certificate to check its facility.",
                             code="no_chain")
    record = verify_facility(enrolment.facility, enrolment.chain[0])
    if record.code != enrolment.identity.facility_code:
        raise EnrolmentError("The facility record is for %(record)s, but this node serves "
                             "%(ours)s.", code="wrong_facility", record=record.code,
                             ours=enrolment.identity.facility_code)
    return record


def tls_name(facility_code: str) -> str:
    return f"{facility_code.lower()}.local"


def _stage_tls(staged: Path, directory: Path, pem: str, chain: list) -> None:
    """The TLS certificate must be for our TLS key and issued by our region."""
    from sync_protocol.certificates import signed_by
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as e:
        raise EnrolmentError("The TLS certificate in the answer cannot be read.",
                             code="invalid_answer") from e
    key = read_private_key(directory / TLS_KEY_FILE)
    if cert.public_key() != key.public_key() or not chain or not signed_by(cert, chain[0]):
        raise EnrolmentError("The TLS certificate in the answer is not for this node's TLS "
                             "key or not from its region.", code="wrong_tls_cert")
    (staged / TLS_CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                         + chain[0].public_bytes(serialization.Encoding.PEM))


def _pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with open(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
