"""Signed sync requests: every push and pull carries the node's signature and certificate.

The node signs, with its private key, the string

    DMED-SYNC-1\\n{METHOD}\\n{path?query}\\n{sha256 hex of the body as sent}\\n{time}\\n{nonce}

and sends the signature, its certificate (so a hub learns new nodes from the chain alone),
its node id, the time and a random nonce in headers. The hub checks, in this order: the
headers are well formed, the certificate chains to a root of its trust list and nothing on the
way is revoked, the certificate names the node the header names, the signature, the clock is
within MAX_CLOCK_SKEW_SECONDS, and last that the nonce is new (so junk cannot fill the nonce
table). The clock comes after the signature so that a refusal can say whether the request
really came from the node it names (`RequestRefused.identity`): only then may the hub note it
on that node's record; anyone can send junk in a node's name. The body digest is over the
bytes on the wire (compressed when gzip), so the hub verifies before inflating anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from .certificates import (
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    EKU_SYNC,
    MISSING_EKU,
    REVOKED,
    NodeIdentity,
    kid_of,
)
from .errors import TrustError
from .trust_list import TrustList

log = logging.getLogger(__name__)

SCHEME = "DMED-SYNC-1"
HEADER_NODE = "X-DMED-Node"
HEADER_TIME = "X-DMED-Time"
HEADER_NONCE = "X-DMED-Nonce"
HEADER_CERTIFICATE = "X-DMED-Certificate"
HEADER_SIGNATURE = "X-DMED-Signature"
SIGNED_HEADERS = (HEADER_NODE, HEADER_TIME, HEADER_NONCE, HEADER_CERTIFICATE, HEADER_SIGNATURE)

# Five minutes: NTP-synced clocks agree far better; a Pi without a battery clock that booted
# in the past must fix its clock first (the refusal tells it the hub's time).
MAX_CLOCK_SKEW_SECONDS = 300
# A nonce only has to be remembered while its time is still acceptable, plus a margin.
NONCE_TTL_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS + 60
NONCE_BYTES = 16  # 128 random bits: no two requests ever share one by chance
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A DER node certificate is under 1 kB; anything much larger is not ours.
MAX_CERTIFICATE_BYTES = 4096
MAX_SIGNATURE_BYTES = 160  # ECDSA P-256 DER is at most 72 bytes, Ed25519 is 64

# Chain refusals reached only once every signature on the chain held (trust_list._check_dates,
# the EKU check): the certificate is genuine, so a request signed with its key is the node's.
GENUINE_CHAIN_REFUSALS = frozenset({REVOKED, CERT_EXPIRED, CERT_NOT_YET_VALID, MISSING_EKU})

NonceSeen = Callable[[str, str, int], bool]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class RequestRefused(TrustError):
    """A sync request the hub will not serve; `http_status` says 401 or 403.

    `identity` is set when the request is nonetheless proven to come from that node (its
    certificate chains to the root and the signature verifies: a wrong clock, a revoked or
    expired certificate); otherwise it is None and the request may be anybody's.
    """

    code = "untrusted"
    http_status = 401
    identity: NodeIdentity | None = None

    def proven(self, identity: NodeIdentity) -> RequestRefused:
        self.identity = identity
        return self


class MalformedAuth(RequestRefused):
    code = "malformed_auth"


class ClockSkew(RequestRefused):
    code = "clock_skew"


class UnknownKey(RequestRefused):
    code = "unknown_key"


class RevokedKey(RequestRefused):
    code = "revoked"
    http_status = 403


class NodeMismatch(RequestRefused):
    code = "node_mismatch"
    http_status = 403


class BadSignature(RequestRefused):
    code = "bad_signature"


class Replayed(RequestRefused):
    code = "replayed"


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body or b"").hexdigest()


def string_to_sign(method: str, target: str, body: bytes, time: int, nonce: str) -> bytes:
    """The exact bytes both ends sign and verify."""
    return "\n".join((SCHEME, method.upper(), target, body_digest(body), str(time),
                      nonce)).encode("utf-8")


def request_target(path: str, query_string: str | bytes = "") -> str:
    """Path plus query as sent on the wire (percent-encoded, in the order sent)."""
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return f"{path}?{query}" if query else path


def unix_time(now: datetime | float | int) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return int(now.timestamp())
    return int(now)


def sign_request(method: str, path: str, body: bytes, key: PrivateKey,
                 cert: x509.Certificate, node_id: str, now: datetime | float | int,
                 nonce: str | None = None) -> dict[str, str]:
    """Headers that authenticate one request; `path` includes the query string if any."""
    time = unix_time(now)
    nonce = nonce or secrets.token_urlsafe(NONCE_BYTES)
    message = string_to_sign(method, path, body, time, nonce)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        raise TypeError("node keys are ECDSA P-256 or Ed25519")
    return {
        HEADER_NODE: node_id,
        HEADER_TIME: str(time),
        HEADER_NONCE: nonce,
        HEADER_CERTIFICATE: base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
        HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if not value or not isinstance(value, str):
        raise MalformedAuth("Header %(header)s is missing: sync requests must be signed",
                            field=name, header=name)
    return value.strip()


def _b64(text: str, name: str, limit: int) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedAuth("Header %(header)s is not base64", field=name, header=name) from e
    if not data or len(data) > limit:
        raise MalformedAuth("Header %(header)s has a wrong length", field=name, header=name)
    return data


def verify_request(method: str, path: str, body: bytes, headers: Mapping[str, str],
                   trust_list: TrustList, now: datetime, nonce_seen: NonceSeen) -> NodeIdentity:
    """Who sent this request, or a RequestRefused leaf saying why it is refused.

    `nonce_seen(node_id, nonce, expires_unix)` records the nonce and answers whether it had
    been seen before; it is only called for an otherwise valid request.
    """
    node_id = _header(headers, HEADER_NODE)
    time_text = _header(headers, HEADER_TIME)
    nonce = _header(headers, HEADER_NONCE)
    cert_der = _b64(_header(headers, HEADER_CERTIFICATE), HEADER_CERTIFICATE,
                    MAX_CERTIFICATE_BYTES)
    signature = _b64(_header(headers, HEADER_SIGNATURE), HEADER_SIGNATURE, MAX_SIGNATURE_BYTES)
    if not (time_text.isascii() and time_text.isdigit() and len(time_text) <= 12):
        raise MalformedAuth("Header %(header)s must be unix seconds", field=HEADER_TIME,
                            header=HEADER_TIME)
    if not NONCE_RE.fullmatch(nonce):
        raise MalformedAuth("Header %(header)s must be 16 to 64 URL-safe characters",
                            field=HEADER_NONCE, header=HEADER_NONCE)
    time, hub_time = int(time_text), unix_time(now)
    message = string_to_sign(method, path, body, time, nonce)
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError as e:
        raise MalformedAuth("Header %(header)s is not a DER certificate",
                            field=HEADER_CERTIFICATE, header=HEADER_CERTIFICATE) from e
    verdict = trust_list.verify_chain(cert, now, require_eku=EKU_SYNC)
    if not verdict.ok:
        leaf = RevokedKey if verdict.reason == REVOKED else UnknownKey
        refusal = leaf("The node certificate is not trusted: %(detail)s",
                       field=HEADER_CERTIFICATE, detail=verdict.message, reason=verdict.reason,
                       kid=kid_of(cert).hex())
        # A chain whose signatures hold but which is revoked or out of date: the node's own
        # trouble if the request is signed with that certificate's key.
        known = verdict.identity
        if (verdict.reason in GENUINE_CHAIN_REFUSALS and known is not None
                and known.node_id == node_id
                and _signature_ok(cert.public_key(), signature, message)):
            raise refusal.proven(known)
        raise refusal
    identity = verdict.identity
    if identity is None or verdict.public_key is None:  # a good verdict always has both
        raise UnknownKey("The node certificate is not trusted: %(detail)s",
                         field=HEADER_CERTIFICATE, detail="no identity")
    if identity.node_id != node_id:
        raise NodeMismatch("Header %(header)s names node %(claimed)s but the certificate is "
                           "node %(actual)s's", field=HEADER_NODE, header=HEADER_NODE,
                           claimed=node_id, actual=identity.node_id)
    if not _signature_ok(verdict.public_key, signature, message):
        raise BadSignature("The request signature does not verify with the node's key",
                           field=HEADER_SIGNATURE)
    if abs(time - hub_time) > MAX_CLOCK_SKEW_SECONDS:
        raise ClockSkew("The node's clock is %(skew)s seconds off the hub's (at most %(limit)s "
                        "allowed); hub time is %(hub_time)s", field=HEADER_TIME,
                        skew=time - hub_time, limit=MAX_CLOCK_SKEW_SECONDS,
                        hub_time=hub_time).proven(identity)
    if nonce_seen(node_id, nonce, time + NONCE_TTL_SECONDS):
        raise Replayed("This request was already received (nonce %(nonce)s); a replay is "
                       "refused", field=HEADER_NONCE, nonce=nonce)
    return identity


def _signature_ok(public_key: object, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
