"""The 38 EU DCC common test vectors: our verifier must reach every expected verdict.

The vectors live beside the project (../shared/conformance/eu-dcc-common, see its README) and
are read in place, never copied. Each EXPECTEDRESULTS key names a step; a step is tested only
when its key is present: true = must succeed, false = must fail.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from cryptography import x509
from PIL import Image, UnidentifiedImageError

from sync_protocol.cose import CoseRejected, decode_sign1
from sync_protocol.qr import EXPIRY_REASONS, decode_transport, kid_of, verify

CONFORMANCE_DIR = Path(__file__).parents[2].parent / "shared" / "conformance" / "eu-dcc-common"
VECTOR_COUNT = 38
# EU policy checks (certificate key usage OIDs, the DCC JSON schema) that prescriptions do
# not have, as the conformance README says.
NOT_APPLICABLE = {"EXPECTEDKEYUSAGE", "EXPECTEDSCHEMAVALIDATION"}
HCERT_CLAIM, DCC_KEY = -260, 1
# decode_transport's reasons that mean "this step, or one before it, failed"
UNPREFIX_FAILURES = {"empty", "too_long", "not_text", "bad_prefix", "unknown_version"}
B45DECODE_FAILURES = UNPREFIX_FAILURES | {"bad_base45"}

if not CONFORMANCE_DIR.is_dir():
    pytest.skip(f"conformance vectors not found in {CONFORMANCE_DIR}", allow_module_level=True)

VECTORS = sorted(CONFORMANCE_DIR.glob("*.json"))


def _clock(vector: dict) -> datetime:
    clock = datetime.fromisoformat(vector["TESTCTX"]["VALIDATIONCLOCK"])
    return clock if clock.tzinfo else clock.replace(tzinfo=UTC)  # no zone means UTC


def _picture_text(vector: dict) -> str | None:
    """The text a scanner reads from the vector's PNG, or None when it reads nothing."""
    try:
        image = Image.open(io.BytesIO(base64.b64decode(vector["2DCODE"])))
    except (UnidentifiedImageError, ValueError):
        return None
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return found[0].text if found else None


def _outcomes(vector: dict) -> dict[str, bool]:
    """Run every step the vector expects through the public API: step -> succeeded."""
    text = vector["PREFIX"]
    certificate = x509.load_der_x509_certificate(
        base64.b64decode(vector["TESTCTX"]["CERTIFICATE"]))
    transport = decode_transport(text)
    outcomes = {
        "EXPECTEDUNPREFIX": transport.reason not in UNPREFIX_FAILURES,
        "EXPECTEDB45DECODE": transport.reason not in B45DECODE_FAILURES,
        "EXPECTEDCOMPRESSION": transport.compressed,  # a zlib stream was there and inflated
    }
    try:
        message = decode_sign1(transport.cose) if transport.cose is not None else None
    except CoseRejected:
        message = None
    outcomes["EXPECTEDDECODE"] = message is not None
    if "COSE" in vector and transport.compressed:
        outcomes["COSE bytes as in the vector"] = transport.cose.hex() == vector["COSE"].lower()
    signature = verify(text, [certificate])
    outcomes["EXPECTEDVERIFY"] = signature.valid and signature.kid == kid_of(certificate)
    outcomes["EXPECTEDEXPIRATIONCHECK"] = verify(text, [certificate], now=_clock(vector)).valid
    if "JSON" in vector:
        dcc = (message.claims.get(HCERT_CLAIM) or {}).get(DCC_KEY) if message else None
        outcomes["EXPECTEDVALIDJSON"] = dcc is not None and json.loads(json.dumps(dcc)) == \
            vector["JSON"]
    if "2DCODE" in vector:
        outcomes["EXPECTEDPICTUREDECODE"] = _picture_text(vector) == vector["PREFIX"]
    return outcomes


def test_all_vectors_are_present():
    assert len(VECTORS) == VECTOR_COUNT


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector(path: Path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    expected = vector["EXPECTEDRESULTS"]
    outcomes = _outcomes(vector)
    untestable = set(expected) - set(outcomes) - NOT_APPLICABLE
    # B1 expects its picture to decode but ships no picture; every other key must be tested.
    assert untestable <= ({"EXPECTEDPICTUREDECODE"} if "2DCODE" not in vector else set())
    mismatches = {step: (want, outcomes[step]) for step, want in expected.items()
                  if step in outcomes and outcomes[step] != want}
    if outcomes.get("COSE bytes as in the vector") is False:
        mismatches["COSE bytes as in the vector"] = (True, False)
    if set(expected) <= NOT_APPLICABLE:
        # Vectors that test only EU policy carry genuine, well-formed signed codes: the
        # cryptographic core must accept them even though the policy does not apply.
        for step in ("EXPECTEDDECODE", "EXPECTEDVERIFY"):
            if not outcomes[step]:
                mismatches[step] = (True, False)
    assert mismatches == {}, vector["TESTCTX"]["DESCRIPTION"]


@pytest.mark.parametrize("path", [p for p in VECTORS if json.loads(p.read_text(
    encoding="utf-8"))["EXPECTEDRESULTS"].get("EXPECTEDEXPIRATIONCHECK") is False],
    ids=lambda p: p.stem)
def test_expired_vectors_fail_on_time_not_on_signature(path: Path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    certificate = x509.load_der_x509_certificate(
        base64.b64decode(vector["TESTCTX"]["CERTIFICATE"]))
    assert verify(vector["PREFIX"], [certificate]).valid
    result = verify(vector["PREFIX"], [certificate], now=_clock(vector))
    assert result.reason in EXPIRY_REASONS
