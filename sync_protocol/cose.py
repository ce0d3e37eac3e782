"""COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392): sign, decode and check a signature.

The same cryptographic core as the EU Digital COVID Certificate, so our verifier also reaches
the EU test vectors' verdicts: kid = first 8 bytes of SHA-256 of the signer's DER certificate,
ES256 signatures as raw r||s (64 bytes, not DER), PS256 and EdDSA also verified.

Decoding never trusts the input: every failure becomes a `CoseRejected` whose `code` is a short
reason ("bad_cbor", "not_cose", "bad_claims", "unsupported_alg", "bad_signature"); the
validity window gives "not_yet_valid", "expired", "cert_not_yet_valid" or "cert_expired".
"""

from __future__ import annotations

import io
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from .certificates import kid_of  # one definition for QR codes and trust lists
from .errors import ProtocolError, TrustError

logger = logging.getLogger(__name__)

# COSE algorithm identifiers (IANA "COSE Algorithms")
ALG_ES256 = -7
ALG_EDDSA = -8
ALG_PS256 = -37
VERIFY_ALGS = frozenset({ALG_ES256, ALG_EDDSA, ALG_PS256})
# COSE header labels (RFC 9052 section 3.1)
HEADER_ALG = 1
HEADER_KID = 4
# CBOR tags: COSE_Sign1 (RFC 9052) and CWT (RFC 8392), which may wrap it
TAG_COSE_SIGN1 = 18
TAG_CWT = 61
# CWT claim keys (RFC 8392 section 3.1)
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_NBF = 5
CLAIM_IAT = 6
CLAIM_HCERT = -260  # EU DCC "hcert" (IANA CWT claims registry): a map of certificate maps
ES256_SIGNATURE_BYTES = 64  # r || s, 32 bytes each
# Real CWTs nest at most 6 levels deep (EU DCC payload); a hostile code gets no more than this.
MAX_CBOR_DEPTH = 16
KEYRING_CACHE_SIZE = 8  # a node verifies against one trust list at a time; spare for rotation

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# RFC 8230: PS256 uses MGF1 with SHA-256 and a salt as long as the hash (32 bytes).
_PSS_SHA256 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256 = hashes.SHA256()


class CoseRejected(TrustError):
    """A COSE message that fails a check; `code` names the check."""

    def __init__(self, reason: str) -> None:
        super().__init__("The signed code was rejected: %(reason)s.", code=reason, reason=reason)


class UnsupportedSigningKey(ProtocolError, TypeError):
    code = "unsupported_signing_key"


@dataclass(frozen=True, slots=True)
class Sign1Message:
    """A decoded COSE_Sign1 whose payload is a CWT claims map (signature not yet checked)."""

    protected: bytes  # the protected header exactly as signed
    alg: int | None
    kid: bytes | None
    payload: bytes
    signature: bytes
    claims: dict[Any, Any]

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def _bstr_head(length: int) -> bytes:
    """The CBOR head of a byte string (major type 2) of `length` bytes, shortest form."""
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")  # payloads are bounded far below 4 GiB


_SIG1_PREFIX = cbor2.dumps("Signature1")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers (RFC 9052 section 4.4, no external AAD):
    the CBOR array ["Signature1", protected, h'', payload], built without a CBOR encoder."""
    return b"".join((b"\x84", _SIG1_PREFIX, _bstr_head(len(protected)), protected, b"\x40",
                     _bstr_head(len(payload)), payload))


def signing_alg(private_key: Any) -> int:
    """The COSE algorithm we sign with for this key: ES256 (P-256) or EdDSA (Ed25519)."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
        private_key.curve, ec.SECP256R1
    ):
        return ALG_ES256
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return ALG_EDDSA
    raise UnsupportedSigningKey(
        "Only P-256 (ES256) and Ed25519 (EdDSA) keys may sign codes, not %(kind)s.",
        kind=type(private_key).__name__,
    )


def raw_signature(private_key: Any, data: bytes) -> bytes:
    """Sign `data` the COSE way: raw r||s for ES256, plain Ed25519 for EdDSA."""
    if signing_alg(private_key) == ALG_ES256:
        r, s = decode_dss_signature(private_key.sign(data, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private_key.sign(data)


def sign1(payload: bytes, private_key: Any, kid: bytes) -> bytes:
    """A tagged COSE_Sign1 with alg and kid in the protected header, nothing unprotected."""
    protected = cbor2.dumps({HEADER_ALG: signing_alg(private_key), HEADER_KID: kid})
    signature = raw_signature(private_key, sig_structure(protected, payload))
    return cbor2.dumps(cbor2.CBORTag(TAG_COSE_SIGN1, [protected, {}, payload, signature]))


# cbor2 decodes maps as dict, or as its frozendict inside a tag: testing those types first skips
# the slow abc.Mapping check, several of which run on every scan.
_MAP_TYPES = (dict, cbor2.frozendict) if hasattr(cbor2, "frozendict") else (dict,)


def is_map(value: Any) -> bool:
    return isinstance(value, _MAP_TYPES) or isinstance(value, Mapping)


def loads_exact(data: bytes) -> Any:
    """Decode exactly one CBOR item filling `data`; raise CoseRejected("bad_cbor") otherwise."""
    # From a file, not cbor2.loads: loads ignores trailing bytes and cannot tell where the item
    # ended, the file's position can (cbor2 seeks back over what it read ahead).
    fp = io.BytesIO(data)
    try:
        value = cbor2.load(fp, max_depth=MAX_CBOR_DEPTH, allow_duplicate_keys=False)
    except Exception as e:  # cbor2 raises more than CBORDecodeError on hostile input
        raise CoseRejected("bad_cbor") from e
    if fp.tell() != len(data):  # a signed code has no trailing bytes
        raise CoseRejected("bad_cbor")
    return value


def _is_numeric_date(value: Any) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


# A signer writes the same protected header (alg, kid) into every code it issues: its decoded
# form is kept per exact bytes, so a scan decodes only the envelope and the claims. Bounded:
# a hostile stream of distinct headers only cycles the cache.
PROTECTED_CACHE_SIZE = 256
_protected_cache: dict[bytes, tuple[frozenset[Any], Any, Any]] = {}


def _protected_header(protected: bytes) -> tuple[frozenset[Any], Any, Any]:
    """The protected header's labels, alg and kid as written (validated by the caller)."""
    hit = _protected_cache.get(protected)
    if hit is not None:
        return hit
    header = loads_exact(protected) if protected else {}
    if not is_map(header):
        raise CoseRejected("not_cose")
    entry = (frozenset(header), header.get(HEADER_ALG), header.get(HEADER_KID))
    if len(_protected_cache) >= PROTECTED_CACHE_SIZE:
        _protected_cache.clear()
    _protected_cache[protected] = entry
    return entry


def decode_sign1(data: bytes) -> Sign1Message:
    """Decode a COSE_Sign1 (tagged 18, untagged, or tag 61 wrapping either) with CWT claims."""
    item = loads_exact(data)
    if type(item) is cbor2.CBORTag:
        if item.tag == TAG_CWT:
            item = item.value
        if type(item) is cbor2.CBORTag and item.tag == TAG_COSE_SIGN1:
            item = item.value
    if not isinstance(item, (list, tuple)) or len(item) != 4:
        raise CoseRejected("not_cose")
    protected, unprotected, payload, signature = item
    if not (
        type(protected) is bytes
        and is_map(unprotected)
        and type(payload) is bytes  # nil would be a detached payload: not a code
        and type(signature) is bytes
    ):
        raise CoseRejected("not_cose")
    labels, alg, kid = _protected_header(protected)
    # Protected wins: the EU vectors put kid (and even alg) in either bucket.
    if unprotected:
        if HEADER_ALG not in labels:
            alg = unprotected.get(HEADER_ALG)
        if HEADER_KID not in labels:
            kid = unprotected.get(HEADER_KID)
    if kid is not None and type(kid) is not bytes:
        raise CoseRejected("not_cose")
    claims = loads_exact(payload)
    if type(claims) is not dict:
        if not is_map(claims):
            raise CoseRejected("bad_claims")
        claims = dict(claims)
    for key in (CLAIM_EXP, CLAIM_NBF, CLAIM_IAT):
        if key in claims and not _is_numeric_date(claims[key]):
            raise CoseRejected("bad_claims")
    if CLAIM_ISS in claims and type(claims[CLAIM_ISS]) is not str:
        raise CoseRejected("bad_claims")
    if CLAIM_HCERT in claims:  # registered claims we know must have their registered shape
        hcert = claims[CLAIM_HCERT]
        if not is_map(hcert) or not all(is_map(v) for v in hcert.values()):
            raise CoseRejected("bad_claims")
    return Sign1Message(protected, alg if type(alg) is int else None, kid, payload, signature,
                        claims)


def check_signature(message: Sign1Message, public_key: Any) -> None:
    """Raise CoseRejected unless `public_key` made `message`'s signature.

    The key type must fit the algorithm (an RSA key never passes an ES256 check), so an
    algorithm named in the unprotected header cannot downgrade anything.
    """
    alg, signature = message.alg, message.signature
    if alg not in VERIFY_ALGS:
        raise CoseRejected("unsupported_alg")
    data = message.to_be_signed()
    try:
        if alg == ALG_ES256:
            if not (
                isinstance(public_key, ec.EllipticCurvePublicKey)
                and isinstance(public_key.curve, ec.SECP256R1)
                and len(signature) == ES256_SIGNATURE_BYTES
            ):
                raise CoseRejected("bad_signature")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public_key.verify(der, data, _ECDSA_SHA256)
        elif alg == ALG_EDDSA:
            if not isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
                raise CoseRejected("bad_signature")
            public_key.verify(signature, data)
        else:  # PS256
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise CoseRejected("bad_signature")
            public_key.verify(signature, data, _PSS_SHA256, _SHA256)
    except (InvalidSignature, ValueError, TypeError) as e:
        raise CoseRejected("bad_signature") from e


# --- Finding the signer ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Signer:
    """A certificate that may have signed codes, with what verification needs precomputed."""

    certificate: x509.Certificate
    public_key: Any
    not_before: float  # certificate validity as POSIX seconds, compared with NumericDates
    not_after: float


Keyring = Mapping[bytes, tuple[Signer, ...]]  # kid -> signers (8-byte kids may collide)
_keyrings: OrderedDict[tuple[int, ...], tuple[tuple[x509.Certificate, ...], Keyring]] = (
    OrderedDict())
_keyrings_lock = threading.Lock()


def _build_keyring(certs: tuple[x509.Certificate, ...]) -> Keyring:
    ring: dict[bytes, tuple[Signer, ...]] = {}
    for cert in certs:
        if not isinstance(cert, x509.Certificate):
            raise TypeError(f"certificates must be x509.Certificate, not {type(cert).__name__}")
        try:
            public_key = cert.public_key()
        except Exception:  # a key type cryptography cannot load can never verify a code
            logger.warning("Ignoring certificate %s: unusable public key", cert.subject)
            continue
        signer = Signer(cert, public_key, cert.not_valid_before_utc.timestamp(),
                        cert.not_valid_after_utc.timestamp())
        kid = kid_of(cert)
        ring[kid] = (*ring.get(kid, ()), signer)
    return MappingProxyType(ring)


def signers_by_kid(certificates: Iterable[x509.Certificate]) -> Keyring:
    """kid -> the signers with that kid, cached per certificate list (verify stays cheap)."""
    # Keyed by the certificates' identities. The entry holds the certificates themselves, so no
    # other object can take one of those ids while it is cached; certificates are immutable.
    certs = tuple(certificates)
    key = tuple(map(id, certs))
    with _keyrings_lock:
        hit = _keyrings.get(key)
        if hit is not None:
            _keyrings.move_to_end(key)
            return hit[1]
    ring = _build_keyring(certs)
    with _keyrings_lock:
        _keyrings[key] = (certs, ring)
        while len(_keyrings) > KEYRING_CACHE_SIZE:
            _keyrings.popitem(last=False)
    return ring


def clear_caches() -> None:
    """Forget the cached keyrings and protected headers (a benchmark's cold start)."""
    with _keyrings_lock:
        _keyrings.clear()
    _protected_cache.clear()


def check_validity(claims: Mapping[Any, Any], signer: Signer, now: float,
                   leeway: float = 0.0) -> str | None:
    """The first broken link of cert.notBefore <= iat <= now <= exp <= cert.notAfter, or None.

    Times are POSIX seconds. `leeway` forgives clock skew on iat and nbf only, never on expiry.
    """
    iat, exp = claims.get(CLAIM_IAT), claims.get(CLAIM_EXP)
    if iat is None or exp is None:
        return "bad_claims"  # a code without both instants cannot be judged in time
    nbf = claims.get(CLAIM_NBF, iat)
    if iat < signer.not_before:
        return "cert_not_yet_valid"
    if now + leeway < iat or now + leeway < nbf:
        return "not_yet_valid"
    if now > exp:
        return "expired"
    if exp > signer.not_after:
        return "cert_expired"
    return None
