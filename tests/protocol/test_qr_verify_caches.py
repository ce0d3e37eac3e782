"""The fast paths of QR verification give the verdicts of the slow ones: the per-signer cache
of decoded protected headers, and the digits decoder."""

from __future__ import annotations

import cbor2
import pytest
from test_qr_verify import NOW, build_sign1, make_claims, make_signer

from sync_protocol import cose, numeric
from sync_protocol.qr import encode, issue, kid_of, verify


@pytest.fixture(autouse=True)
def cold():
    cose.clear_caches()
    yield
    cose.clear_caches()


def test_a_cached_header_never_carries_a_verdict_to_another_code():
    key, cert = make_signer("es256")
    good = issue(make_claims(), key, cert)
    header = {cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: kid_of(cert)}
    other_key, _ = make_signer("es256")  # same header bytes, someone else's signature
    forged = encode(build_sign1(other_key, make_claims().to_cbor(), protected=header))
    for _ in range(2):  # cold, then with the header cached
        assert verify(good, [cert], now=NOW).valid
        assert verify(forged, [cert], now=NOW).reason == "bad_signature"
    assert len(cose._protected_cache) == 1  # one signer, one header decoded


def test_the_unprotected_bucket_is_still_read_when_the_header_is_cached():
    key, cert = make_signer("es256")
    alg_only = {cose.HEADER_ALG: cose.ALG_ES256}
    payload = make_claims().to_cbor()
    with_kid = encode(build_sign1(key, payload, protected=alg_only,
                                  unprotected={cose.HEADER_KID: kid_of(cert)}))
    without_kid = encode(build_sign1(key, payload, protected=alg_only))
    for _ in range(2):
        assert verify(with_kid, [cert]).valid
        assert verify(without_kid, [cert]).reason == "no_kid"


def test_a_protected_header_that_is_no_map_is_refused_every_time():
    key, cert = make_signer("es256")
    protected = cbor2.dumps([cose.ALG_ES256])
    item = cbor2.CBORTag(cose.TAG_COSE_SIGN1, [protected, {}, make_claims().to_cbor(),
                                               b"\0" * 64])
    code = encode(cbor2.dumps(item))
    assert [verify(code, [cert]).reason for _ in range(2)] == ["not_cose", "not_cose"]
    assert cose._protected_cache == {}


def test_the_header_cache_stays_bounded():
    for n in range(cose.PROTECTED_CACHE_SIZE + 20):
        cose.decode_sign1(cbor2.dumps(cbor2.CBORTag(cose.TAG_COSE_SIGN1, [
            cbor2.dumps({cose.HEADER_ALG: cose.ALG_ES256, cose.HEADER_KID: n.to_bytes(8, "big")}),
            {}, cbor2.dumps({cose.CLAIM_ISS: "x"}), b"\0" * 64])))
    assert 0 < len(cose._protected_cache) <= cose.PROTECTED_CACHE_SIZE


@pytest.mark.parametrize("text", [
    "0" * 16 + "\u0663",  # ARABIC-INDIC DIGIT THREE: str.isdigit() says yes
    "0" * 16 + "_",  # int() would skip it
    "00000000_00000001",
    " " + "0" * 16,  # int() would strip it
    "0" * 16 + "\uff11",  # FULLWIDTH DIGIT ONE
])
def test_only_ascii_digits_decode(text):
    with pytest.raises(numeric.InvalidDigits):
        numeric.digits_to_bytes(text)


def test_a_chunk_out_of_range_is_refused_in_any_position():
    good = numeric.bytes_to_digits(bytes(range(21)))  # three full chunks
    for chunk in range(3):
        text = good[:chunk * 17] + "9" * 17 + good[(chunk + 1) * 17:]
        with pytest.raises(numeric.InvalidDigits):
            numeric.digits_to_bytes(text)
    assert numeric.digits_to_bytes(good) == bytes(range(21))
