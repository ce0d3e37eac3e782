"""Hostile CBOR inside a code, even one validly signed: every decode takes exactly one item
filling its bytes, with no repeated map key and no nesting deeper than cose.MAX_CBOR_DEPTH, in
the envelope, both headers, the claims and the prescription body alike.

cbor2 never writes a repeated key, so these codes are written item by item.
"""

from __future__ import annotations

import cbor2
import pytest
from test_qr_verify import make_claims, make_signer

from sync_protocol import cose, qr
from sync_protocol.qr import encode, kid_of, verify

NESTING = 20  # arrays inside arrays: beyond MAX_CBOR_DEPTH, wherever it sits
DEEP = b"\x81" * NESTING + b"\x00"


def cbor_map(pairs: list[tuple[int, bytes]]) -> bytes:
    """A CBOR map of up to 23 entries written from encoded values, so a key may repeat."""
    return bytes([0xA0 | len(pairs)]) + b"".join(cbor2.dumps(k) + v for k, v in pairs)


def encoded_pairs(mapping: dict) -> list[tuple[int, bytes]]:
    return [(k, cbor2.dumps(v)) for k, v in mapping.items()]


def claims_with(body: bytes | None = None, *extra: tuple[int, bytes]) -> bytes:
    """The test claims as CBOR, the body replaced by `body`, then `extra` entries."""
    pairs = encoded_pairs(make_claims().to_claims())
    if body is not None:
        pairs = [(k, body if k == qr.RX_CLAIM else v) for k, v in pairs]
    return cbor_map(pairs + list(extra))


def body_with(*extra: tuple[int, bytes]) -> bytes:
    return cbor_map(encoded_pairs(make_claims().to_claims()[qr.RX_CLAIM]) + list(extra))


def signed(key, payload: bytes, protected: bytes, unprotected: bytes = b"\xa0",
           after: bytes = b"") -> bytes:
    """A tagged COSE_Sign1 of exactly these bytes, validly signed, then `after`."""
    signature = cose.raw_signature(key, cose.sig_structure(protected, payload))
    return (b"\xd2\x84" + cbor2.dumps(protected) + unprotected + cbor2.dumps(payload)
            + cbor2.dumps(signature) + after)


@pytest.fixture(scope="module")
def es256():
    return make_signer("es256")


def header(cert, *extra: tuple[int, bytes]) -> bytes:
    return cbor_map([(cose.HEADER_ALG, cbor2.dumps(cose.ALG_ES256)),
                     (cose.HEADER_KID, cbor2.dumps(kid_of(cert))), *extra])


def test_codes_written_item_by_item_verify(es256):
    key, cert = es256
    code = signed(key, claims_with(body_with()), header(cert))
    assert code == qr.sign(make_claims(), key, cert)[:-64] + code[-64:]  # the same layout
    result = verify(encode(code), [cert])
    assert result.valid and result.prescription == make_claims()


# Each case: (payload, protected, unprotected, after) from (cert); None keeps the good one.
HOSTILE = {
    "trailing-after-envelope": lambda cert: (None, None, None, b"\x00"),
    "trailing-after-protected": lambda cert: (None, header(cert) + b"\x00", None, b""),
    "trailing-after-claims": lambda cert: (claims_with() + b"\x00", None, None, b""),
    "repeated-claim": lambda cert: (
        claims_with(None, (cose.CLAIM_ISS, cbor2.dumps("someone-else"))), None, None, b""),
    "repeated-body-key": lambda cert: (
        claims_with(body_with((0, cbor2.dumps(1)))), None, None, b""),
    "repeated-protected-label": lambda cert: (
        None, header(cert, (cose.HEADER_KID, cbor2.dumps(kid_of(cert)))), None, b""),
    "repeated-unprotected-label": lambda cert: (
        None, None, cbor_map([(cose.HEADER_KID, cbor2.dumps(b"k")),
                              (cose.HEADER_KID, cbor2.dumps(b"k"))]), b""),
    "deep-claim": lambda cert: (claims_with(None, (99, DEEP)), None, None, b""),
    "deep-body": lambda cert: (claims_with(body_with((99, DEEP))), None, None, b""),
    "deep-protected": lambda cert: (None, header(cert, (99, DEEP)), None, b""),
    "deep-unprotected": lambda cert: (None, None, cbor_map([(99, DEEP)]), b""),
}


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_cbor_is_refused_even_when_signed(es256, case):
    key, cert = es256
    payload, protected, unprotected, after = case(cert)
    code = signed(key, payload if payload is not None else claims_with(),
                  protected if protected is not None else header(cert),
                  unprotected if unprotected is not None else b"\xa0", after)
    for _ in range(2):  # the protected header cold, then cached
        result = verify(encode(code), [cert])
        assert (result.valid, result.reason) == (False, "bad_cbor")
        assert result.claims is None and result.prescription is None


def test_nesting_within_the_limit_is_read(es256):
    key, cert = es256
    shallow = b"\x81" * 6 + b"\x00"  # as deep as an EU DCC payload
    code = signed(key, claims_with(None, (99, shallow)), header(cert, (99, shallow)),
                  cbor_map([(99, shallow)]))
    result = verify(encode(code), [cert])
    assert result.valid and result.claims[99] == [[[[[[0]]]]]]
