"""Drawing the prescription QR code, and reading it back the way a pharmacy scanner does."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import segno
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from PIL import Image

from sync_protocol.numeric import MAX_ENCODED_DIGITS, MAX_TEXT_CHARS
from sync_protocol.qr import (
    FORMAT_PREFIX,
    CodeTooLarge,
    PrescriptionClaims,
    PrescriptionItemClaim,
    issue,
    render_png,
    render_svg,
    verify,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SVG_NS = "{http://www.w3.org/2000/svg}"


def make_signer(alg: str):
    key = ec.generate_private_key(ec.SECP256R1()) if alg == "es256" \
        else ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"node-{alg}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=400))
            .sign(key, None if alg == "eddsa" else hashes.SHA256()))
    return key, cert


def make_claims(item_count: int = 2) -> PrescriptionClaims:
    items = [PrescriptionItemClaim("amoxicillin", "500 mg", "capsule", 20, 1, 7),
             PrescriptionItemClaim("metformin", "850 mg", "tablet", 60, 2, 28),
             PrescriptionItemClaim("salbutamol", "100 mcg/dose", "inhaler", 1, 3, 30)]
    return PrescriptionClaims(
        issuer="TAS-0042-node-1", issued_at=NOW, not_before=NOW,
        expires_at=NOW + timedelta(days=90), prescription_id="01JNF8Z4W2K7Q9X3V5T6R8M1PA",
        pinfl="31203851234567", prescriber="PR-000123", number="TAS-2026-000123", kind="e",
        items=tuple(items[:item_count]))


def scan(png: bytes) -> list[zxingcpp.Barcode]:
    # A counter scanner reads QR codes only; searching every symbology let zxing read a
    # stray Codabar out of the QR code's own modules now and then.
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                  formats=zxingcpp.BarcodeFormat.QRCode)


@pytest.fixture(scope="module", params=["es256", "eddsa"])
def signer(request):
    return make_signer(request.param)


@pytest.mark.parametrize("item_count", [1, 3])
def test_code_survives_png_and_a_scanner(signer, item_count):
    key, cert = signer
    claims = make_claims(item_count)
    text = issue(claims, key, cert)
    found = scan(render_png(text, scale=4))
    assert [b.format for b in found] == [zxingcpp.BarcodeFormat.QRCode]
    scanned = found[0].text
    assert scanned == text and scanned.isascii() and scanned.isdigit()
    assert scanned.startswith(FORMAT_PREFIX)
    # a keyboard-wedge scanner types the text and then Enter
    result = verify(scanned + "\r\n", [cert], now=NOW + timedelta(days=1))
    assert result.valid and result.prescription == claims


@pytest.mark.parametrize("text", ["0123456789", "01" + "7" * 40])
def test_error_correction_is_m_never_boosted(text):
    # segno would silently raise these short codes to level H; we ask it not to.
    found = scan(render_png(text, scale=3))
    assert [(b.text, b.ec_level) for b in found] == [(text, "M")]


def test_scale_and_border_set_the_picture_size():
    text = "01" + "3" * 100
    small, large = (Image.open(io.BytesIO(render_png(text, scale=s))) for s in (2, 6))
    assert large.size[0] == 3 * small.size[0] and small.size[0] == small.size[1]
    assert render_png(text, scale=2, border=0) != render_png(text, scale=2)


def test_svg_is_standalone_and_draws_the_same_symbol():
    text = "01" + "5" * 200
    svg = render_svg(text, scale=4, border=4)
    assert not svg.startswith("<?xml")  # inlines into HTML as is
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.find(f"{SVG_NS}path") is not None
    png = Image.open(io.BytesIO(render_png(text, scale=4, border=4)))
    assert (int(float(root.get("width"))), int(float(root.get("height")))) == png.size
    # The viewBox spans the whole symbol with its quiet zone, so CSS may scale it uncut.
    assert root.get("viewBox") == f"0 0 {png.size[0]} {png.size[1]}"


@pytest.mark.parametrize("text", ["HC1:NCFOXN%TS3DH", "01 23", "", "٠١٢"])
def test_only_digit_codes_are_drawn(text):
    with pytest.raises(ValueError):
        render_svg(text)
    with pytest.raises(ValueError):
        render_png(text)


def test_limits_are_the_qr_capacities():
    # mask=0 skips segno's slow mask search; capacity does not depend on the mask.
    def symbol(digits: int, level: str):
        return segno.make_qr("1" * digits, error=level, mode="numeric", boost_error=False,
                             mask=0)
    assert symbol(MAX_ENCODED_DIGITS, "m").designator == "40-M"
    assert symbol(MAX_TEXT_CHARS, "l").designator == "40-L"
    for digits, level in ((MAX_ENCODED_DIGITS + 1, "m"), (MAX_TEXT_CHARS + 1, "l")):
        with pytest.raises(segno.DataOverflowError):
            symbol(digits, level)
    with pytest.raises(CodeTooLarge):
        render_svg("1" * (MAX_ENCODED_DIGITS + 1))
