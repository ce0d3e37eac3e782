"""The signed prescription QR code: issue it, draw it, and verify it offline.

A code is a COSE_Sign1 (see `cose`) over CWT claims: iss, iat, nbf, exp and, under the private
claim key RX_CLAIM, a compact prescription body (no name, no diagnosis). It travels as digits
only (see `numeric`); `verify` also reads EU DCC "HC1:" codes, whose test vectors it passes.

Claim RX_CLAIM = -99800: RFC 8392 section 9.1 reserves keys below -65536 for private use, so no
future IANA registration can collide with it (998 is Uzbekistan's calling code). It costs two
bytes more than a key such as -7100, which lies in the "Specification Required" range.

The body is a CBOR map with small integer keys:
  0 body version (1), 1 prescription id (16-byte binary ULID), 2 patient PINFL (14-digit text),
  3 prescriber id, 4 prescription number (human readable), 5 kind ("e" or "paper"),
  6 items: a list of maps {1 INN, 2 strength, 3 form, 4 quantity, 5 repeats (refills after the
  first fill, as in FHIR; absent = 0), 6 minimum days between fills (absent = 0)}.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import segno
from cryptography import x509

from . import cose
from .cose import CoseRejected, UnsupportedSigningKey, kid_of
from .errors import ProtocolError
from .numeric import (
    FORMAT_PREFIX,
    HC1_PREFIX,
    MAX_ENCODED_DIGITS,
    MAX_TEXT_CHARS,
    CodeTooLarge,
    TransportResult,
    decode_transport,
    encode_transport,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EXPIRY_REASONS", "FORMAT_PREFIX", "HC1_PREFIX", "MAX_TEXT_CHARS", "RX_CLAIM",
    "CodeTooLarge", "PrescriptionClaims", "PrescriptionInvalid", "PrescriptionItemClaim",
    "TransportResult", "UndrawableCode", "UnsupportedSigningKey", "VerifyResult",
    "decode_transport", "encode", "issue", "kid_of", "render_png", "render_svg", "sign", "verify",
]

RX_CLAIM = -99800  # the prescription body's CWT claim key (private use, see the docstring)
BODY_VERSION = 1  # bumped when the body's keys change meaning; readers refuse others
KINDS = ("e", "paper")
PINFL_DIGITS = 14
QR_ERROR_LEVEL = "m"  # 15 % of the symbol may be lost (creases, smudges on printed codes)
# Offline nodes' clocks drift: a code issued "2 minutes in the future" by the doctor's node is
# still good at the pharmacy next door. Applies to iat and nbf only, never to expiry.
CLOCK_SKEW_LEEWAY = timedelta(minutes=5)
EXPIRY_REASONS = frozenset({"not_yet_valid", "expired", "cert_not_yet_valid", "cert_expired"})

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # ULID text alphabet
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_PAIR_SHIFTS = range(120, -1, -10)
ULID_CHARS = 26
ULID_BYTES = 16
_B_VERSION, _B_ID, _B_PINFL, _B_PRESCRIBER, _B_NUMBER, _B_KIND, _B_ITEMS = range(7)
_I_INN, _I_STRENGTH, _I_FORM, _I_QUANTITY, _I_REPEATS, _I_MIN_DAYS = range(1, 7)


class PrescriptionInvalid(ProtocolError, ValueError):
    code = "invalid_prescription"


class UndrawableCode(ProtocolError, ValueError):
    code = "undrawable_code"


def _ulid_to_bytes(text: str) -> bytes:
    value = 0
    for char in text:
        value = (value << 5) | _CROCKFORD.index(char)
    return value.to_bytes(ULID_BYTES, "big")


def _ulid_from_bytes(data: bytes) -> str:
    # 130 bits (top 2 zero) as 13 table look-ups of 10 bits: this runs on every verify.
    value = int.from_bytes(data, "big")
    return "".join([_CROCKFORD_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != "" and not value.isspace()


def _is_count(value: Any, minimum: int) -> bool:
    return type(value) is int and value >= minimum  # bool is no count


def _text(value: Any, name: str) -> str:
    if not _is_text(value):
        raise PrescriptionInvalid("%(name)s must be non-empty text.", field=name, name=name)
    return value


def _instant(value: Any, name: str) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC and not value.microsecond:
        return value  # as decoded from a code: nothing to check or normalise
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise PrescriptionInvalid("%(name)s must be a timezone-aware datetime.",
                                  field=name, name=name)
    return value.astimezone(UTC).replace(microsecond=0)  # CWT NumericDate: whole seconds


@dataclass(frozen=True, slots=True)
class PrescriptionItemClaim:
    """One drug line, by INN; `repeats` counts refills after the first fill (FHIR)."""

    inn: str
    strength: str
    form: str
    quantity: int
    repeats: int = 0
    min_days_between_fills: int = 0

    def __post_init__(self) -> None:
        # One cheap test on the way in (verify builds these for every scan); on failure, find
        # the field to name.
        if (_is_text(self.inn) and _is_text(self.strength) and _is_text(self.form)
                and _is_count(self.quantity, 1) and _is_count(self.repeats, 0)
                and _is_count(self.min_days_between_fills, 0)):
            return
        for name in ("inn", "strength", "form"):
            _text(getattr(self, name), name)
        for name, minimum in (("quantity", 1), ("repeats", 0), ("min_days_between_fills", 0)):
            if not _is_count(getattr(self, name), minimum):
                raise PrescriptionInvalid(
                    "%(name)s must be a whole number of at least %(minimum)s.",
                    field=name, name=name, minimum=minimum)

    def to_map(self) -> dict[int, Any]:
        item = {_I_INN: self.inn, _I_STRENGTH: self.strength, _I_FORM: self.form,
                _I_QUANTITY: self.quantity}
        if self.repeats:  # zero is the default: leave it out, every digit enlarges the symbol
            item[_I_REPEATS] = self.repeats
        if self.min_days_between_fills:
            item[_I_MIN_DAYS] = self.min_days_between_fills
        return item

    @classmethod
    def from_map(cls, item: Any) -> PrescriptionItemClaim:
        if not cose.is_map(item):
            raise PrescriptionInvalid("Each item must be a map.", field="items")
        return cls(item.get(_I_INN), item.get(_I_STRENGTH), item.get(_I_FORM),
                   item.get(_I_QUANTITY), item.get(_I_REPEATS, 0), item.get(_I_MIN_DAYS, 0))


@dataclass(frozen=True, slots=True)
class PrescriptionClaims:
    """What a prescription code asserts. Datetimes are UTC, truncated to whole seconds."""

    issuer: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    prescription_id: str  # ULID text
    pinfl: str
    prescriber: str
    number: str
    kind: str
    items: tuple[PrescriptionItemClaim, ...]

    def __post_init__(self) -> None:
        _text(self.issuer, "issuer")
        for name in ("issued_at", "not_before", "expires_at"):
            value = getattr(self, name)
            normal = _instant(value, name)
            if normal is not value:
                object.__setattr__(self, name, normal)
        if not self.issued_at <= self.expires_at or not self.not_before <= self.expires_at:
            raise PrescriptionInvalid("The code would expire before it becomes valid.",
                                      field="expires_at")
        pid = _text(self.prescription_id, "prescription_id").upper()
        # strip() leaves something exactly when a character lies outside the alphabet
        if len(pid) != ULID_CHARS or pid[0] > "7" or pid.strip(_CROCKFORD):
            raise PrescriptionInvalid("The prescription id must be a ULID.",
                                      field="prescription_id")
        if pid != self.prescription_id:
            object.__setattr__(self, "prescription_id", pid)
        pinfl = _text(self.pinfl, "pinfl")
        if len(pinfl) != PINFL_DIGITS or not (pinfl.isascii() and pinfl.isdigit()):
            raise PrescriptionInvalid("PINFL must be 14 digits.", field="pinfl")
        _text(self.prescriber, "prescriber")
        _text(self.number, "number")
        if self.kind not in KINDS:
            raise PrescriptionInvalid("Kind must be 'e' or 'paper'.", field="kind")
        items = tuple(self.items) if isinstance(self.items, list | tuple) else None
        if not items or not all(type(i) is PrescriptionItemClaim for i in items):
            raise PrescriptionInvalid("A prescription needs at least one item.", field="items")
        if items is not self.items:
            object.__setattr__(self, "items", items)

    def to_claims(self) -> dict[int, Any]:
        """The CWT claims map."""
        body = {_B_VERSION: BODY_VERSION, _B_ID: _ulid_to_bytes(self.prescription_id),
                _B_PINFL: self.pinfl, _B_PRESCRIBER: self.prescriber, _B_NUMBER: self.number,
                _B_KIND: self.kind, _B_ITEMS: [item.to_map() for item in self.items]}
        return {cose.CLAIM_ISS: self.issuer,
                cose.CLAIM_IAT: int(self.issued_at.timestamp()),
                cose.CLAIM_NBF: int(self.not_before.timestamp()),
                cose.CLAIM_EXP: int(self.expires_at.timestamp()),
                RX_CLAIM: body}

    def to_cbor(self) -> bytes:
        """The CWT claims map as CBOR: the payload a code signs."""
        return cbor2.dumps(self.to_claims())

    @classmethod
    def from_cbor(cls, data: bytes) -> PrescriptionClaims:
        try:
            claims = cose.loads_exact(data)
        except CoseRejected as e:
            raise PrescriptionInvalid("The claims are not valid CBOR.") from e
        return cls.from_claims(claims)

    @classmethod
    def from_claims(cls, claims: Any) -> PrescriptionClaims:
        """Read a decoded CWT claims map; raise PrescriptionInvalid for anything malformed."""
        try:
            body = claims[RX_CLAIM]
            version = body.get(_B_VERSION) if cose.is_map(body) else None
            if type(version) is not int or version != BODY_VERSION:  # CBOR true == 1 in Python
                raise PrescriptionInvalid("Unknown prescription body.", field="body")
            raw_id = body.get(_B_ID)
            if not isinstance(raw_id, bytes) or len(raw_id) != ULID_BYTES:
                raise PrescriptionInvalid("The prescription id must be 16 bytes.",
                                          field="prescription_id")
            items = body.get(_B_ITEMS)
            if not isinstance(items, list | tuple):
                raise PrescriptionInvalid("Items must be a list.", field="items")
            iat = claims[cose.CLAIM_IAT]
            return cls(
                issuer=claims.get(cose.CLAIM_ISS),
                issued_at=datetime.fromtimestamp(iat, UTC),
                not_before=datetime.fromtimestamp(claims.get(cose.CLAIM_NBF, iat), UTC),
                expires_at=datetime.fromtimestamp(claims[cose.CLAIM_EXP], UTC),
                prescription_id=_ulid_from_bytes(raw_id),
                pinfl=body.get(_B_PINFL), prescriber=body.get(_B_PRESCRIBER),
                number=body.get(_B_NUMBER), kind=body.get(_B_KIND),
                items=tuple(PrescriptionItemClaim.from_map(item) for item in items),
            )
        except PrescriptionInvalid:
            raise
        except Exception as e:  # missing keys, wrong types, timestamps out of range
            raise PrescriptionInvalid("The prescription claims are malformed.") from e


# --- Issuing and drawing -------------------------------------------------------------------

def sign(claims: PrescriptionClaims, private_key: Any, certificate: x509.Certificate) -> bytes:
    """A tagged COSE_Sign1 over `claims`, signed ES256 or EdDSA, kid taken from `certificate`."""
    if private_key.public_key() != certificate.public_key():
        raise UnsupportedSigningKey("The private key does not belong to the certificate.")
    if (claims.issued_at < certificate.not_valid_before_utc
            or claims.expires_at > certificate.not_valid_after_utc):
        raise PrescriptionInvalid(
            "The code must fall within its certificate's validity, %(start)s to %(end)s.",
            field="expires_at", start=certificate.not_valid_before_utc.isoformat(),
            end=certificate.not_valid_after_utc.isoformat())
    return cose.sign1(claims.to_cbor(), private_key, kid_of(certificate))


def encode(cose_bytes: bytes) -> str:
    """The digits-only text of a code: FORMAT_PREFIX + digits of zlib(COSE)."""
    return encode_transport(cose_bytes)


def issue(claims: PrescriptionClaims, private_key: Any, certificate: x509.Certificate) -> str:
    """Sign and encode: the text to put in the QR code."""
    return encode(sign(claims, private_key, certificate))


def _symbol(text: str) -> segno.QRCode:
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise UndrawableCode("Only codes made of digits are drawn (QR numeric mode).")
    if len(text) > MAX_ENCODED_DIGITS:
        raise CodeTooLarge("The code has %(length)s digits; a QR code at level M holds "
                           "%(limit)s.", length=len(text), limit=MAX_ENCODED_DIGITS)
    # boost_error=False: the level is M, always; a silent boost would change print sizes.
    return segno.make_qr(text, error=QR_ERROR_LEVEL, mode="numeric", boost_error=False)


def render_svg(text: str, *, scale: int = 4, border: int = 4) -> str:
    """A standalone SVG of the code (no XML declaration, so it also inlines into HTML).

    It has a viewBox as well as its pixel size: a page's CSS may then size it to its box and
    the whole symbol, quiet zone included, scales with it instead of being cropped.
    """
    symbol = _symbol(text)
    out = io.BytesIO()
    symbol.save(out, kind="svg", scale=scale, border=border, xmldecl=False, omitsize=True)
    svg = out.getvalue().decode("utf-8")
    side = symbol.symbol_size(scale=scale, border=border)[0]
    return svg.replace("<svg ", f'<svg width="{side}" height="{side}" ', 1)


def render_png(text: str, scale: int = 4, *, border: int = 4) -> bytes:
    """A PNG of the code; `scale` is pixels per module, `border` the quiet zone in modules."""
    out = io.BytesIO()
    _symbol(text).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


# --- Verifying -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on a scanned code. `reason` names the first failed check.

    `claims` and `prescription` are filled only once the signature holds, so a forged code
    never shows its content; an expired but authentic code does.
    """

    valid: bool
    reason: str | None = None
    kid: bytes | None = None
    claims: dict[Any, Any] | None = None
    prescription: PrescriptionClaims | None = None
    certificate: x509.Certificate | None = None


def _verify(text: object, ring: cose.Keyring, now: datetime | None,
            require_prescription: bool) -> VerifyResult:
    transport = decode_transport(text)
    if transport.cose is None:
        return VerifyResult(False, transport.reason)
    try:
        message = cose.decode_sign1(transport.cose)
    except CoseRejected as e:
        return VerifyResult(False, e.code)
    kid = message.kid
    if kid is None:
        return VerifyResult(False, "no_kid")
    signers = ring.get(kid)
    if not signers:
        return VerifyResult(False, "unknown_kid", kid)
    if message.alg not in cose.VERIFY_ALGS:
        return VerifyResult(False, "unsupported_alg", kid)
    signer, reason = None, "bad_signature"
    for candidate in signers:
        try:
            cose.check_signature(message, candidate.public_key)
        except CoseRejected as e:
            reason = e.code
            continue
        signer = candidate
        break
    if signer is None:
        return VerifyResult(False, reason, kid)

    claims, cert = message.claims, signer.certificate
    prescription = None
    if RX_CLAIM in claims:
        try:
            prescription = PrescriptionClaims.from_claims(claims)
        except PrescriptionInvalid:
            return VerifyResult(False, "bad_prescription", kid, claims, None, cert)
    elif require_prescription:
        return VerifyResult(False, "not_a_prescription", kid, claims, None, cert)
    if now is not None:
        invalid = cose.check_validity(claims, signer, now.timestamp(),
                                      CLOCK_SKEW_LEEWAY.total_seconds())
        if invalid is not None:
            return VerifyResult(False, invalid, kid, claims, prescription, cert)
    return VerifyResult(True, None, kid, claims, prescription, cert)


def verify(text: object, certificates: Iterable[x509.Certificate], now: datetime | None = None,
           *, require_prescription: bool = False) -> VerifyResult:
    """Verify a scanned code (ours or EU "HC1:") against the signers in `certificates`.

    Without `now` only the signature is judged; with it, also
    cert.notBefore <= iat <= now <= exp <= cert.notAfter. With `require_prescription`, a
    validly signed code without a prescription body fails with "not_a_prescription".
    Never raises on malformed input: every outcome is a VerifyResult.

    This checks the signature chain only (who signed, with a key its chain vouches for, and
    within the times above). It does not know the patient at the counter, whether the signer
    may prescribe, revocations and cancellations, or what was dispensed already: those are
    the counter's checks, in ``edge_node.services.dispensing.verdict_for``. A caller who
    wants the full verdict calls that.
    """
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise ValueError("now must be a timezone-aware datetime")
    ring = cose.signers_by_kid(certificates)
    try:
        result = _verify(text, ring, now, require_prescription)
    except Exception:  # a bug, not a verdict: log it loudly, never crash the counter
        logger.exception("Unexpected failure while verifying a code")
        return VerifyResult(False, "internal_error")
    if not result.valid:
        logger.debug("Code refused: %s (kid %s)", result.reason,
                     result.kid.hex() if result.kid else None)
    return result
