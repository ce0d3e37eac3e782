"""Enrolment by CSR, as EST (RFC 7030) and ACME do it: the node's key is born on the node.

The node makes a key (it never leaves the node), a CSR whose subject is its NodeIdentity, and
a short random code it shows on its screen. The request carries the CSR and a proof: an
HMAC-SHA256 keyed with the code over the request's id, time and CSR. The region's operator
types the code read off the node's screen and compares the CSR's fingerprint; only the real
node's request verifies with that code, so a request injected on the LAN cannot be approved
by mistake. A renewal is also signed by the node's current key.

    request  {"format": "dmed-enrolment-request", "version": 1, "request_id": ULID,
              "created_at": ISO UTC, "csr": PEM, "proof": hex,
              "renewal": {"cert": PEM, "signature": base64} (renewals only)}
    answer   {"format": "dmed-enrolment-answer", "version": 1, "request_id": ULID,
              "cert": PEM, "chain": [PEM, ...], "trust_list": {...}, "facility": {...}}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from .certificates import NodeIdentity, NotANodeCert, identity_of
from .errors import ProtocolError
from .identifiers import is_ulid

log = logging.getLogger(__name__)

REQUEST_FORMAT = "dmed-enrolment-request"
ANSWER_FORMAT = "dmed-enrolment-answer"
REQUEST_VERSION = 1
# A request waits at most a working day for the operator; an older one is refused (replay).
REQUEST_TTL = timedelta(hours=24)
# A request "from the future" beyond this is refused: the node's clock is set at enrolment.
FUTURE_SKEW = timedelta(minutes=10)
# Crockford base32 without I, L, O, U: read aloud and typed without confusion.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8  # 40 bits; the station refuses a request after a few wrong codes
FINGERPRINT_BYTES = 16  # shown as 8 groups of 4 hex digits


class EnrolmentRequestInvalid(ProtocolError, ValueError):
    code = "enrolment_request_invalid"


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(text: str) -> str:
    """What the operator typed, as the node made it: case, dashes and look-alikes forgiven."""
    cleaned = str(text or "").upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def public_key_fingerprint(public_key: Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, first 16 bytes, in groups: what the operator
    compares between the node's screen and the station's."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der).hexdigest()[:FINGERPRINT_BYTES * 2]
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def _message(request_id: str, created_at: str, csr_der: bytes,
             tls_der: bytes | None = None) -> bytes:
    """What the code's proof and a renewal's signature cover: the TLS CSR too, so nobody on
    the LAN can swap in a TLS key of their own under the node's name."""
    parts = [REQUEST_FORMAT.encode(), request_id.encode(), created_at.encode(), csr_der]
    return b"\n".join(parts + ([tls_der] if tls_der is not None else []))


def make_tls_csr(key: Any, dns_name: str, ips: list[str]) -> x509.CertificateSigningRequest:
    """A CSR for the node's TLS server certificate: `<facility-code>.local` and LAN IPs."""
    names: list[x509.GeneralName] = [x509.DNSName(dns_name)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, digest))


def _proof(code: str, message: bytes) -> str:
    return hmac.new(normalise_code(code).encode("ascii"), message, hashlib.sha256).hexdigest()


def _sign(key: Any, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _verify(public: Any, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def make_csr(key: Any, identity: NodeIdentity) -> x509.CertificateSigningRequest:
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (x509.CertificateSigningRequestBuilder().subject_name(identity.subject())
            .sign(key, digest))


def make_request(key: Any, identity: NodeIdentity, code: str, request_id: str,
                 now: datetime, *, current_key: Any = None,
                 current_cert: x509.Certificate | None = None,
                 tls_csr: x509.CertificateSigningRequest | None = None) -> dict[str, Any]:
    """A request for `identity`'s certificate; with current_* it is a renewal; with tls_csr
    it also asks for the node's TLS server certificate."""
    csr = make_csr(key, identity)
    created_at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    tls_der = tls_csr.public_bytes(serialization.Encoding.DER) if tls_csr else None
    message = _message(request_id, created_at, csr_der, tls_der)
    request: dict[str, Any] = {
        "format": REQUEST_FORMAT, "version": REQUEST_VERSION, "request_id": request_id,
        "created_at": created_at,
        "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "proof": _proof(code, message)}
    if tls_csr is not None:
        request["tls_csr"] = tls_csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    if current_key is not None and current_cert is not None:
        request["renewal"] = {
            "cert": current_cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "signature": base64.b64encode(_sign(current_key, message)).decode("ascii")}
    return request


@dataclass(frozen=True)
class EnrolmentRequest:
    """A parsed request whose CSR signature verifies (the code is checked separately)."""

    request_id: str
    created_at: datetime
    csr: x509.CertificateSigningRequest
    identity: NodeIdentity
    proof: str
    message: bytes
    renewal_cert: x509.Certificate | None = None
    renewal_signature: bytes | None = None
    tls_csr: x509.CertificateSigningRequest | None = None

    @property
    def fingerprint(self) -> str:
        return public_key_fingerprint(self.csr.public_key())

    def code_matches(self, code: str) -> bool:
        return hmac.compare_digest(_proof(code, self.message), self.proof)

    def expired(self, now: datetime) -> bool:
        return now - self.created_at > REQUEST_TTL

    def renewal_signed(self) -> bool:
        """The renewal signature verifies with the current certificate's key."""
        if self.renewal_cert is None or self.renewal_signature is None:
            return False
        return _verify(self.renewal_cert.public_key(), self.renewal_signature, self.message)


def parse_request(data: Any, now: datetime) -> EnrolmentRequest:
    """Check the request's form, CSR signature, node identity and time."""
    def bad(message: str, field: str | None = None, **params: Any) -> EnrolmentRequestInvalid:
        return EnrolmentRequestInvalid(message, field=field, **params)

    if (not isinstance(data, dict) or data.get("format") != REQUEST_FORMAT
            or data.get("version") != REQUEST_VERSION):
        raise bad("This is not a DMED enrolment request.")
    request_id, created = data.get("request_id"), data.get("created_at")
    if not isinstance(request_id, str) or not is_ulid(request_id):
        raise bad("The request id is missing or malformed.", "request_id")
    try:
        created_at = datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        csr = x509.load_pem_x509_csr(str(data.get("csr", "")).encode("ascii"))
    except ValueError as e:
        raise bad("The request's time or CSR cannot be read.", "csr") from e
    if not csr.is_signature_valid:
        raise bad("The CSR's signature does not verify.", "csr")
    proof = data.get("proof")
    if not isinstance(proof, str) or len(proof) != 64:
        raise bad("The request carries no code proof.", "proof")
    if created_at > now + FUTURE_SKEW:
        raise bad("The request is dated in the future; check the node's clock.", "created_at")
    try:
        identity = identity_of(csr)  # type: ignore[arg-type]  # reads .subject only
    except NotANodeCert as e:
        raise bad("The CSR does not name a DMED node.", "csr") from e
    tls_csr = None
    if data.get("tls_csr") is not None:
        try:
            tls_csr = x509.load_pem_x509_csr(str(data["tls_csr"]).encode("ascii"))
        except ValueError as e:
            raise bad("The TLS CSR cannot be read.", "tls_csr") from e
        if not tls_csr.is_signature_valid:
            raise bad("The TLS CSR's signature does not verify.", "tls_csr")
    message = _message(request_id, str(created), csr.public_bytes(serialization.Encoding.DER),
                       tls_csr.public_bytes(serialization.Encoding.DER) if tls_csr else None)
    renewal_cert = renewal_signature = None
    renewal = data.get("renewal")
    if renewal is not None:
        try:
            renewal_cert = x509.load_pem_x509_certificate(str(renewal["cert"]).encode("ascii"))
            renewal_signature = base64.b64decode(str(renewal["signature"]), validate=True)
        except (KeyError, TypeError, ValueError) as e:
            raise bad("The renewal part of the request cannot be read.", "renewal") from e
    return EnrolmentRequest(request_id, created_at, csr, identity, proof, message,
                            renewal_cert, renewal_signature, tls_csr)
