"""The prescription QR code's verification core: round trips, forgeries, time, hostile input."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime, timedelta, timezone

import base45
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol import cose, numeric, qr
from sync_protocol.qr import (
    FORMAT_PREFIX,
    PrescriptionClaims,
    PrescriptionInvalid,
    PrescriptionItemClaim,
    UnsupportedSigningKey,
    decode_transport,
    encode,
    issue,
    kid_of,
    sign,
    verify,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PRESCRIPTION_ID = "01JNF8Z4W2K7Q9X3V5T6R8M1PA"
FORGERY_REASONS = {"bad_cbor", "not_cose", "bad_claims", "no_kid", "unknown_kid",
                   "unsupported_alg", "bad_signature", "bad_prescription"}
TRANSPORT_REASONS = {"empty", "too_long", "not_text", "bad_prefix", "unknown_version",
                     "bad_digits", "bad_base45", "bad_compression"}
HYPOTHESIS = settings(max_examples=150, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def make_signer(alg: str = "es256", *, valid_from: datetime = NOW - timedelta(days=30),
                valid_until: datetime = NOW + timedelta(days=365), name: str = "node-1"):
    if alg == "es256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "eddsa":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_until)
            .sign(key, None if alg == "eddsa" else hashes.SHA256()))
    return key, cert


def make_claims(**overrides) -> PrescriptionClaims:
    fields = dict(
        issuer="TAS-0042-node-1", issued_at=NOW, not_before=NOW,
        expires_at=NOW + timedelta(days=30), prescription_id=PRESCRIPTION_ID,
        pinfl="31203851234567", prescriber="PR-000123", number="TAS-2026-000123", kind="e",
        items=(PrescriptionItemClaim("amoxicillin", "500 mg", "capsule", 20, 1, 7),
               PrescriptionItemClaim("ibuprofen", "400 mg", "tablet", 30)),
    )
    fields.update(overrides)
    return PrescriptionClaims(**fields)


def build_sign1(key, payload: bytes, *, protected: dict, unprotected: dict | None = None,
                tags: tuple[int, ...] = (cose.TAG_COSE_SIGN1,), signature: bytes | None = None):
    """A COSE_Sign1 with headers of our choosing, signed by `key` unless a signature is given."""
    protected_bytes = cbor2.dumps(protected) if protected else b""
    if signature is None:
        signature = cose.raw_signature(key, cose.sig_structure(protected_bytes, payload))
    item = [protected_bytes, unprotected or {}, payload, signature]
    for tag in reversed(tags):
        item = cbor2.CBORTag(tag, item)
    return cbor2.dumps(item)


@pytest.fixture(scope="module", params=["es256", "eddsa"])
def signer(request):
    return make_signer(request.param)


@pytest.fixture(scope="module")
def es256():
    return make_signer("es256")


@pytest.fixture(scope="module")
def es256_code(es256):
    return issue(make_claims(), *es256)


# --- Round trips -------------------------------------------------------------------------

def test_issued_code_verifies(signer):
    key, cert = signer
    claims = make_claims()
    text = issue(claims, key, cert)
    result = verify(text, [cert], now=NOW + timedelta(hours=1))
    assert result.valid and result.reason is None
    assert result.prescription == claims
    assert result.kid == kid_of(cert) and result.certificate == cert
    assert result.claims[cose.CLAIM_ISS] == "TAS-0042-node-1"
    assert text.startswith(FORMAT_PREFIX) and text.isascii() and text.isdigit()


@pytest.mark.parametrize(("alg", "expected"), [("es256", cose.ALG_ES256),
                                               ("eddsa", cose.ALG_EDDSA)])
def test_signature_is_raw_cose_not_der(alg, expected):
    key, cert = make_signer(alg)
    message = cose.decode_sign1(sign(make_claims(), key, cert))
    assert message.alg == expected
    assert len(message.signature) == 64  # ES256 r||s and Ed25519 are both 64 raw bytes
    assert message.kid == kid_of(cert) == cert.fingerprint(hashes.SHA256())[:8]


def test_signer_found_among_many_certificates(es256):
    key, cert = es256
    others = [make_signer(alg, name=f"other-{alg}")[1] for alg in ("es256", "eddsa", "rsa")]
    result = verify(issue(make_claims(), key, cert), [*others, cert])
    assert result.valid and result.certificate == cert


def test_claims_cbor_round_trip_normalises_to_utc_seconds():
    tashkent = timezone(timedelta(hours=5))
    claims = make_claims(issued_at=datetime(2026, 3, 2, 14, 30, 0, 123456, tzinfo=tashkent),
                         prescription_id=PRESCRIPTION_ID.lower())
    assert claims.issued_at == NOW and claims.issued_at.tzinfo is UTC
    assert claims.prescription_id == PRESCRIPTION_ID
    assert PrescriptionClaims.from_cbor(claims.to_cbor()) == claims


@pytest.mark.parametrize("overrides", [
    {"pinfl": "3120385123456"}, {"pinfl": "3120385123456X"}, {"pinfl": "٣١٢٠٣٨٥١٢٣٤٥٦٧"},
    {"issued_at": datetime(2026, 3, 2, 9, 30)}, {"kind": "x"}, {"items": ()},
    {"items": ("amoxicillin 500 mg",)}, {"prescription_id": "not-a-ulid"},
    {"prescription_id": "81JNF8Z4W2K7Q9X3V5T6R8M1PA"},
    {"prescription_id": "01JNF8Z4W2K7Q9X3V5T6R8M1PU"},
    {"expires_at": NOW - timedelta(seconds=1)}, {"issuer": ""}, {"number": "  "},
    {"not_before": NOW + timedelta(days=31)}, {"prescriber": None}, {"items": [None]},
    {"prescription_id": PRESCRIPTION_ID[:-1]}, {"kind": ["e"]},
], ids=lambda o: "-".join(o))
def test_invalid_claims_are_refused(overrides):
    with pytest.raises(PrescriptionInvalid):
        make_claims(**overrides)


@pytest.mark.parametrize("overrides", [
    {"prescription_id": PRESCRIPTION_ID.lower()},
    {"items": list(make_claims().items)},
    {"issued_at": NOW.replace(microsecond=7)},
    {"expires_at": (NOW + timedelta(days=30)).astimezone(timezone(timedelta(hours=5)))},
    {"not_before": NOW.astimezone(timezone(timedelta(hours=-3)))},
], ids=lambda o: "-".join(o))
def test_claims_are_normalised(overrides):
    claims = make_claims(**overrides)
    assert claims == make_claims() and claims.prescription_id == PRESCRIPTION_ID
    assert type(claims.items) is tuple
    assert all(getattr(claims, name).tzinfo is UTC and not getattr(claims, name).microsecond
               for name in ("issued_at", "not_before", "expires_at"))


@pytest.mark.parametrize("item", [dict(quantity=0), dict(quantity=True), dict(repeats=-1),
                                  dict(min_days_between_fills=-1), dict(inn="")])
def test_invalid_items_are_refused(item):
    fields = dict(inn="amoxicillin", strength="500 mg", form="capsule", quantity=10) | item
    with pytest.raises(PrescriptionInvalid):
        PrescriptionItemClaim(**fields)


@pytest.mark.parametrize("noise", ["\r\n", "\n", "\r", " \t", "\n\r\n  "])
def test_scanner_noise_at_the_ends_is_ignored(es256, noise):
    key, cert = es256
    text = issue(make_claims(), key, cert)
    assert verify(text + noise, [cert]).valid
    assert verify(noise + text, [cert]).valid


def test_untagged_and_double_tagged_messages_verify(es256):
    key, cert = es256
    header = {cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: kid_of(cert)}
    payload = make_claims().to_cbor()
    for tags in [(), (cose.TAG_COSE_SIGN1,), (cose.TAG_CWT, cose.TAG_COSE_SIGN1)]:
        result = verify(encode(build_sign1(key, payload, protected=header, tags=tags)), [cert])
        assert result.valid, tags


def test_kid_in_unprotected_header_is_accepted_protected_wins(es256):
    key, cert = es256
    payload = make_claims().to_cbor()
    alg = {cose.HEADER_ALG: cose.ALG_ES256}
    kid = {cose.HEADER_KID: kid_of(cert)}
    wrong = {cose.HEADER_KID: b"wrongkid"}
    assert verify(encode(build_sign1(key, payload, protected=alg, unprotected=kid)),
                  [cert]).valid
    assert verify(encode(build_sign1(key, payload, protected=alg | wrong, unprotected=kid)),
                  [cert]).reason == "unknown_kid"
    assert verify(encode(build_sign1(key, payload, protected=alg | kid, unprotected=wrong)),
                  [cert]).valid


def test_ps256_is_verified():
    key, cert = make_signer("rsa")
    payload = make_claims().to_cbor()
    protected = cbor2.dumps({cose.HEADER_ALG: cose.ALG_PS256, cose.HEADER_KID: kid_of(cert)})
    data = cose.sig_structure(protected, payload)
    pss = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    pkcs1 = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    good = build_sign1(key, payload, protected=cbor2.loads(protected), signature=pss)
    bad = build_sign1(key, payload, protected=cbor2.loads(protected), signature=pkcs1)
    assert verify(encode(good), [cert]).valid
    assert verify(encode(bad), [cert]).reason == "bad_signature"


# --- Forgeries ---------------------------------------------------------------------------

def test_every_flipped_bit_is_refused(signer):
    key, cert = signer
    cose_bytes = sign(make_claims(), key, cert)
    accepted, reasons = [], set()
    for position in range(len(cose_bytes)):
        for bit in range(8):
            forged = bytearray(cose_bytes)
            forged[position] ^= 1 << bit
            result = verify(encode(bytes(forged)), [cert])
            reasons.add(result.reason)
            if result.valid or result.reason not in FORGERY_REASONS:
                accepted.append((position, bit, result.reason))
    assert accepted == []
    assert "bad_signature" in reasons


@HYPOTHESIS
@given(data=st.data())
def test_a_changed_digit_never_changes_what_is_accepted(es256, es256_code, data):
    cert, text = es256[1], es256_code  # one fixed code: ECDSA signatures differ every time
    position = data.draw(st.integers(0, len(text) - 1))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != text[position]))
    changed = text[:position] + digit + text[position + 1:]
    result = verify(changed, [cert])
    if result.valid:
        # Deflate ignores the padding bits after its last block: such a change leaves the
        # signed message byte for byte the same. Anything else must be refused.
        assert decode_transport(changed).cose == decode_transport(text).cose
    else:
        assert result.reason in TRANSPORT_REASONS | FORGERY_REASONS


def test_code_signed_by_a_stranger_is_refused(es256):
    _, cert = es256
    stranger_key, stranger_cert = make_signer("es256", name="stranger")
    claims = make_claims()
    assert verify(issue(claims, stranger_key, stranger_cert), [cert]).reason == "unknown_kid"
    # The stranger claims a trusted kid: the signature gives it away.
    forged = cose.sign1(claims.to_cbor(), stranger_key, kid_of(cert))
    result = verify(encode(forged), [cert])
    assert result.reason == "bad_signature"
    assert result.claims is None and result.prescription is None  # forged content stays hidden


def test_swapped_signatures_are_refused(es256):
    key, cert = es256
    first = cbor2.loads(sign(make_claims(), key, cert)).value
    second = cbor2.loads(sign(make_claims(number="TAS-2026-000124"), key, cert)).value
    swapped = cbor2.dumps(cbor2.CBORTag(cose.TAG_COSE_SIGN1, [*first[:3], second[3]]))
    assert verify(encode(swapped), [cert]).reason == "bad_signature"


def test_der_encoded_es256_signature_is_refused(es256):
    key, cert = es256
    header = {cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: kid_of(cert)}
    payload = make_claims().to_cbor()
    der = key.sign(cose.sig_structure(cbor2.dumps(header), payload), ec.ECDSA(hashes.SHA256()))
    forged = build_sign1(key, payload, protected=header, signature=der)
    assert verify(encode(forged), [cert]).reason == "bad_signature"


@pytest.mark.parametrize(("protected", "unprotected", "tags", "reason"), [
    ({cose.HEADER_ALG: cose.ALG_ES256}, {}, (18,), "no_kid"),
    ({cose.HEADER_ALG: -35, cose.HEADER_KID: "KID"}, {}, (18,), "unsupported_alg"),
    ({cose.HEADER_KID: "KID"}, {}, (18,), "unsupported_alg"),
    ({cose.HEADER_ALG: cose.ALG_EDDSA, cose.HEADER_KID: "KID"}, {}, (18,), "bad_signature"),
    ({cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: "KID"}, {}, (98,), "not_cose"),
    ({cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: "text"}, {}, (18,), "not_cose"),
], ids=["no-kid", "es384", "no-alg", "alg-key-mismatch", "cose-sign-tag", "text-kid"])
def test_malformed_headers_are_refused(es256, protected, unprotected, tags, reason):
    key, cert = es256
    protected = {k: (kid_of(cert) if v == "KID" else v) for k, v in protected.items()}
    forged = build_sign1(key, make_claims().to_cbor(), protected=protected,
                         unprotected=unprotected, tags=tags)
    assert verify(encode(forged), [cert]).reason == reason


def test_trailing_bytes_and_detached_payload_are_refused(es256):
    key, cert = es256
    good = sign(make_claims(), key, cert)
    assert verify(encode(good + b"\x00"), [cert]).reason == "bad_cbor"
    message = cbor2.loads(good).value
    detached = cbor2.dumps(cbor2.CBORTag(18, [message[0], {}, None, message[3]]))
    assert verify(encode(detached), [cert]).reason == "not_cose"


def test_prescription_body_is_required_when_asked(es256):
    key, cert = es256
    claims = {cose.CLAIM_ISS: "TAS-0042-node-1", cose.CLAIM_IAT: int(NOW.timestamp()),
              cose.CLAIM_EXP: int((NOW + timedelta(days=1)).timestamp())}
    text = encode(cose.sign1(cbor2.dumps(claims), key, kid_of(cert)))
    plain = verify(text, [cert], now=NOW)
    assert plain.valid and plain.prescription is None and plain.claims == claims
    strict = verify(text, [cert], now=NOW, require_prescription=True)
    assert (strict.valid, strict.reason) == (False, "not_a_prescription")


@pytest.mark.parametrize("change", [
    lambda body: {0: 1}, lambda body: body | {0: 2}, lambda body: body | {0: True},
    lambda body: "text",
    lambda body: body | {1: b"short"}, lambda body: body | {6: []},
    lambda body: body | {2: 31203851234567}, lambda body: body | {6: [{1: "amoxicillin"}]},
], ids=["empty", "version-2", "version-true", "not-a-map", "short-id", "no-items", "int-pinfl",
        "bare-item"])
def test_malformed_signed_body_is_refused(es256, change):
    key, cert = es256
    claims = make_claims().to_claims()
    claims[qr.RX_CLAIM] = change(claims[qr.RX_CLAIM])
    text = encode(cose.sign1(cbor2.dumps(claims), key, kid_of(cert)))
    result = verify(text, [cert])
    assert (result.valid, result.reason) == (False, "bad_prescription")
    assert verify(text, [cert], require_prescription=True).reason == "bad_prescription"


def test_certificate_list_changes_are_seen(es256):
    key, cert = es256
    other = make_signer("es256", name="other")[1]
    text = issue(make_claims(), key, cert)
    certificates = [cert]
    assert verify(text, certificates).valid
    certificates[0] = other  # the same list object, new content: no stale cache
    assert verify(text, certificates).reason == "unknown_kid"
    assert verify(text, [other, cert]).valid


# --- Time ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "reason"), [
    (NOW - timedelta(hours=1), "not_yet_valid"),
    (NOW - timedelta(minutes=2), None),  # clock skew between offline nodes is tolerated
    (NOW, None),
    (NOW + timedelta(days=30), None),
    (NOW + timedelta(days=30, seconds=1), "expired"),
], ids=["before-issue", "skew", "at-issue", "last-second", "expired"])
def test_validity_window(es256, now, reason):
    key, cert = es256
    result = verify(issue(make_claims(), key, cert), [cert], now=now)
    assert (result.valid, result.reason) == (reason is None, reason)
    assert result.prescription is not None  # an authentic but expired code still shows what it is


def test_not_before_in_the_future(es256):
    key, cert = es256
    text = issue(make_claims(not_before=NOW + timedelta(days=2)), key, cert)
    assert verify(text, [cert], now=NOW + timedelta(days=1)).reason == "not_yet_valid"
    assert verify(text, [cert], now=NOW + timedelta(days=3)).valid
    assert verify(text, [cert]).valid  # without a clock only the signature is judged


@pytest.mark.parametrize(("valid_from", "valid_until", "reason"), [
    (NOW + timedelta(hours=1), NOW + timedelta(days=365), "cert_not_yet_valid"),
    (NOW - timedelta(days=30), NOW + timedelta(days=10), "cert_expired"),
])
def test_code_outside_certificate_validity(valid_from, valid_until, reason):
    key, cert = make_signer("es256", valid_from=valid_from, valid_until=valid_until)
    text = encode(cose.sign1(make_claims().to_cbor(), key, kid_of(cert)))
    assert verify(text, [cert], now=NOW + timedelta(days=2)).reason == reason


def test_sign_refuses_a_code_outliving_its_certificate():
    key, cert = make_signer("es256", valid_until=NOW + timedelta(days=10))
    with pytest.raises(PrescriptionInvalid):
        sign(make_claims(), key, cert)


def test_sign_refuses_foreign_or_unsupported_keys(es256):
    _, cert = es256
    with pytest.raises(UnsupportedSigningKey):
        sign(make_claims(), make_signer("es256")[0], cert)
    rsa_key, rsa_cert = make_signer("rsa")
    with pytest.raises(UnsupportedSigningKey):
        sign(make_claims(), rsa_key, rsa_cert)


def test_naive_now_is_a_programming_error(es256):
    with pytest.raises(ValueError):
        verify("01", [es256[1]], now=datetime(2026, 3, 2))


# --- Hostile and broken input ---------------------------------------------------------------

def test_truncated_codes_are_refused(es256):
    key, cert = es256
    text = issue(make_claims(), key, cert)
    for length in [*range(0, 40), *range(40, len(text), 7), len(text) - 1]:
        result = verify(text[:length], [cert])
        assert not result.valid, length
        assert result.reason in TRANSPORT_REASONS, (length, result.reason)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), (" \r\n", "empty"), (None, "not_text"), (12345, "not_text"),
    ("02" + "1" * 40, "unknown_version"), ("7", "bad_prefix"), ("HC2:NCFOXN", "unknown_version"),
    ("HL0:NCFOXN", "bad_prefix"), ("NCFOXN%TS3DH", "bad_prefix"), ("ЩС1Ж", "bad_prefix"),
    ("01" + "1" * 16, "bad_digits"), ("01" + "9" * 17, "bad_digits"), ("01" + "999", "bad_digits"),
    ("0112a", "bad_digits"), ("01١٢٣", "bad_digits"), ("011_000", "bad_digits"),
    ("HC1:abc", "bad_base45"), ("HC1:" + "A", "bad_base45"), ("HC1:", "bad_cbor"),
    ("01" + numeric.bytes_to_digits(b"not zlib"), "bad_compression"),
    ("01", "bad_compression"),
    ("01" + numeric.bytes_to_digits(zlib.compress(b"\0" * 1_000_000)), "bad_compression"),
    ("01" + numeric.bytes_to_digits(zlib.compress(b"x")[:-1]), "bad_compression"),
    ("01" + numeric.bytes_to_digits(zlib.compress(b"\x18\x2a") + b"\0"), "bad_compression"),
    ("01" + numeric.bytes_to_digits(zlib.compress(b"\x18\x2a")), "not_cose"),
    ("HC1:" + base45.b45encode(b"\x18\x2a").decode(), "not_cose"),
], ids=lambda value: repr(value)[:24])
def test_broken_input_gets_a_reason(es256, text, reason):
    result = verify(text, [es256[1]])
    assert (result.valid, result.reason) == (False, reason)


@pytest.mark.parametrize("text", [
    "0" * 100_000, "01" + "7" * 100_000, "x" * 100_000, "HC1:" + "A" * 100_000,
    b"0" * 100_000, "01" + "5" * (qr.MAX_TEXT_CHARS - 1),
], ids=["zeros", "ours", "letters", "hc1", "bytes", "one-too-many"])
def test_oversized_input_is_refused_early(es256, text):
    assert verify(text, [es256[1]]).reason == "too_long"


def test_longest_possible_scan_plus_enter_is_not_too_long(es256):
    text = "01" + "0" * (qr.MAX_TEXT_CHARS - 2) + "\r\n"
    assert verify(text, [es256[1]]).reason not in {"too_long", "internal_error"}


@HYPOTHESIS
@given(digits=st.text(alphabet="0123456789", max_size=800))
def test_random_digits_never_raise(es256, digits):
    for text in (digits, FORMAT_PREFIX + digits):
        result = verify(text, [es256[1]])
        assert not result.valid and result.reason in TRANSPORT_REASONS | FORGERY_REASONS


@HYPOTHESIS
@given(blob=st.binary(max_size=600))
def test_random_bytes_never_raise(es256, blob):
    certs = [es256[1]]
    b45 = base45.b45encode(blob).decode()
    for text in (encode(blob), "HC1:" + b45, "HC1:" + base45.b45encode(zlib.compress(blob))
                 .decode(), blob, blob.decode("latin-1")):
        result = verify(text, certs)
        assert not result.valid
        assert result.reason in TRANSPORT_REASONS | FORGERY_REASONS, result.reason


@HYPOTHESIS
@given(text=st.text(max_size=300))
def test_random_text_never_raises(es256, text):
    result = verify(text, [es256[1]])
    assert not result.valid and result.reason != "internal_error"


@HYPOTHESIS
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary(max_size=20)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.integers(-300, 10) | st.just(qr.RX_CLAIM) | st.text(max_size=3),
                      children, max_size=4),
    max_leaves=20))
def test_random_cbor_never_raises(es256, value):
    key, cert = es256
    for blob in (cbor2.dumps(value), cbor2.dumps(cbor2.CBORTag(18, value))):
        assert verify(encode(blob), [cert]).reason in FORGERY_REASONS
    # the same value as a signed payload: structure checks after a valid signature
    result = verify(encode(cose.sign1(cbor2.dumps(value), key, kid_of(cert))), [cert])
    assert result.reason != "internal_error"


# --- The digits transport -------------------------------------------------------------------

@HYPOTHESIS
@given(data=st.binary(max_size=300))
def test_digits_round_trip(data):
    text = numeric.bytes_to_digits(data)
    assert text == "" or (text.isascii() and text.isdigit())
    assert len(text) == numeric.digits_length(len(data))
    assert numeric.digits_to_bytes(text) == data


def test_digit_lengths_no_byte_string_has_are_refused():
    possible = {numeric.digits_length(n) for n in range(0, 60)}
    for length in range(0, 17 * 8):
        if length in possible:
            continue
        with pytest.raises(numeric.InvalidDigits):
            numeric.digits_to_bytes("0" * length)


def test_digits_density_and_capacity(es256):
    assert numeric.digits_length(7000) / 7000 < 2.43
    key, cert = es256
    assert len(issue(make_claims(), key, cert)) < 800  # a QR code of version 12-13 at level M
    incompressible = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(80))
    with pytest.raises(qr.CodeTooLarge):
        encode(incompressible)


def test_decode_transport_reports_the_steps(es256):
    key, cert = es256
    cose_bytes = sign(make_claims(), key, cert)
    ours = decode_transport(encode(cose_bytes) + "\r\n")
    assert (ours.cose, ours.scheme, ours.compressed) == (cose_bytes, "digits", True)
    raw = decode_transport("HC1:" + base45.b45encode(cose_bytes).decode())
    assert (raw.cose, raw.scheme, raw.compressed) == (cose_bytes, "hc1", False)
