"""The printed prescription's QR code scans (issue 12, point 1), in headless Chromium.

The doctor's prescription page is rendered with print media emulated, its width set to the
printable area of an A5 or an A6 sheet, in uz, ru and en, for a prescription of 1 and of 5
medicines; the QR element is screenshotted and zxing-cpp must read back exactly the digits the
node issued, with the 4-module quiet zone kept and the code inside the sheet's border. The
kiosk's QR is read the same way. One browser and one page serve every case.
"""

from __future__ import annotations

import io

import pytest
import zxingcpp
from helpers.browser import WAIT_MS, kiosk_identify
from helpers.ui import SCREENSHOTS  # noqa: F401
from PIL import Image
from test_ui_browser_rx import sign_in

from edge_node.services import prescribing
from kiosk_ui.prescription_parts import QR_SCALE

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]

MM_PER_INCH = 25.4
CSS_PX_PER_INCH = 96
# Printable area (sheet minus the @page margins of ui.css), in mm: what the page lays out in.
PRINTABLE_MM = {"a5": (148 - 2 * 8, 210 - 2 * 8), "a6": (105 - 2 * 5, 148 - 2 * 5)}
# Two device pixels per CSS pixel is 192 dpi: less than any printer's 300 dpi, so a code read
# here is read with margin on paper.
PRINT_SCALE = 2
QUIET_MODULES = 4  # ISO/IEC 18004 quiet zone
WHITE = 200  # the darkest grey still counted as white in the quiet zone

ITEMS = [
    {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
     "dosage": "1 kapsula kuniga 3 mahal, 7 kun"},
    {"inn": "amlodipine", "form": "tablet", "strength": "5 mg", "quantity": 30,
     "dosage": "1 tabletka kuniga 1 mahal, ertalab"},
    {"inn": "metformin", "form": "tablet", "strength": "850 mg", "quantity": 60,
     "dosage": "1 tabletka kuniga 2 mahal, ovqatdan keyin"},
    {"inn": "omeprazole", "form": "capsule", "strength": "20 mg", "quantity": 28,
     "dosage": "1 kapsula nonushtadan oldin"},
    {"inn": "atorvastatin", "form": "tablet", "strength": "20 mg", "quantity": 30,
     "dosage": "1 tabletka kechqurun"},
]


# Elements sticking out to the right of the printed page (none may).
WIDER_THAN_PAGE = """[...document.querySelectorAll('body *')].filter(e => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.right > document.documentElement.clientWidth + 0.5;
}).map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right))"""


def px(mm: float) -> int:
    return int(mm * CSS_PX_PER_INCH / MM_PER_INCH)


def read_qr(png: bytes) -> list:
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                  formats=zxingcpp.BarcodeFormat.QRCode)


def assert_scans(element, expected: str, name: str) -> None:
    """The element's screenshot decodes to exactly `expected`, with its white quiet zone."""
    side_units = float(element.get_attribute("viewBox").split()[2])
    png = element.screenshot()
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(png)
    found = read_qr(png)
    assert [b.text for b in found] == [expected], name
    image = Image.open(io.BytesIO(png)).convert("L")
    module = image.width / (side_units / QR_SCALE)  # device pixels per module
    corners = found[0].position
    xs = [corners.top_left.x, corners.top_right.x, corners.bottom_left.x, corners.bottom_right.x]
    ys = [corners.top_left.y, corners.top_right.y, corners.bottom_left.y, corners.bottom_right.y]
    # The quiet zone: 4 modules of white on every side of the symbol, inside the element.
    margin = (QUIET_MODULES - 0.5) * module
    assert min(xs) >= margin and min(ys) >= margin, (name, xs, ys, module)
    assert image.width - max(xs) >= margin and image.height - max(ys) >= margin, name
    for band in ((0, 0, image.width, int(margin)), (0, 0, int(margin), image.height)):
        assert min(image.crop(band).getdata()) >= WHITE, f"{name}: quiet zone not white"


def inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


@pytest.fixture
def print_page(browser):  # noqa: F811
    yield from _tab(browser, PRINT_SCALE)


@pytest.fixture
def screen_page(browser):  # noqa: F811
    yield from _tab(browser, 1)  # a kiosk's screen: one device pixel per CSS pixel


def _tab(browser, scale: int):  # noqa: F811
    context = browser.new_context(viewport={"width": 800, "height": 800},
                                  device_scale_factor=scale, locale="uz-UZ")
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], errors


def test_the_printed_prescription_qr_scans_at_a5_and_a6_in_every_language(
        print_page, live, store, pinned, actor_for, clinic_credentials):  # noqa: F811
    doctor = actor_for("doctor")
    patient_id = pinned["patient"]["patient_id"]
    issued = {n: prescribing.issue_prescription(store, doctor, clinic_credentials,
                                                patient_id=patient_id, items=ITEMS[:n])
              for n in (1, 5)}
    sign_in(print_page, live, "doctor", "2222", "/ui/desk/today")
    # On screen first (the sheet drawn with its dashed border, as the doctor sees it).
    print_page.set_viewport_size({"width": 1024, "height": 600})
    for size in PRINTABLE_MM:
        print_page.goto(f"{live}/ui/desk/prescriptions/{issued[5]['prescription_id']}"
                        f"?size={size}&lang=uz")
        svg = print_page.locator("[data-qr] svg")
        assert inside(svg.bounding_box(), print_page.locator("article.rx-sheet").bounding_box())
        assert_scans(svg, issued[5]["qr"], f"screen-{size}-uz-5-items")
    print_page.emulate_media(media="print")
    for size, (width_mm, height_mm) in PRINTABLE_MM.items():
        print_page.set_viewport_size({"width": px(width_mm), "height": px(height_mm)})
        for lang in ("uz", "ru", "en"):
            for count, rx in issued.items():
                code = store.one("SELECT qr FROM prescriptions WHERE prescription_id = ?",
                                 (rx["prescription_id"],))["qr"]
                assert code == rx["qr"]
                print_page.goto(f"{live}/ui/desk/prescriptions/{rx['prescription_id']}"
                                f"?size={size}&lang={lang}")
                name = f"print-{size}-{lang}-{count}-items"
                sheet = print_page.locator("article.rx-sheet")
                qr = print_page.locator("[data-qr]")
                svg = print_page.locator("[data-qr] svg")
                # Laid out whole: the SVG fills its box, square, inside the sheet.
                box, svg_box, sheet_box = (qr.bounding_box(), svg.bounding_box(),
                                           sheet.bounding_box())
                assert abs(svg_box["width"] - box["width"]) < 1, name
                assert abs(svg_box["width"] - svg_box["height"]) < 1, name
                assert inside(svg_box, sheet_box), (name, svg_box, sheet_box)
                assert svg_box["x"] + svg_box["width"] <= px(width_mm) + 0.5, name
                assert print_page.evaluate(WIDER_THAN_PAGE) == [], name
                assert_scans(svg, code, name)
                print_page.screenshot(path=str(SCREENSHOTS / f"{name}-page.png"),
                                      full_page=True)
                if count == 1:  # one medicine fits one sheet, QR and signature included
                    assert sheet_box["height"] <= px(height_mm), (name, sheet_box["height"])


def test_the_kiosk_prescription_qr_scans_on_screen_and_in_print(
        screen_page, live, store, pinned, actor_for, clinic_credentials, seeded):  # noqa: F811
    """At one device pixel per CSS pixel, as a kiosk's screen (and a draft print) shows it."""
    tab = screen_page
    person = pinned["patient"]
    rx = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                        patient_id=person["patient_id"], items=ITEMS)
    tab.set_viewport_size({"width": 1024, "height": 600})
    kiosk_identify(tab, live, person, lang="ru")
    tab.goto(f"{live}/ui/kiosk/prescriptions/{rx['prescription_id']}")
    # Names a patient knows, never codes: the clinic, the doctor, the drug's form in Russian.
    clinic = store.one("SELECT name FROM facilities WHERE facility_id = ?",
                       (seeded["facility_id"],))
    issued_by = tab.inner_text("[data-issued-by]")
    assert clinic["name"] in issued_by and seeded["facility_id"] not in issued_by
    assert "капсулы" in tab.inner_text(".rx-items")
    svg = tab.locator(".qr svg")
    assert_scans(svg, rx["qr"], "kiosk-qr-screen-ru")
    tab.emulate_media(media="print")
    tab.set_viewport_size({"width": px(PRINTABLE_MM["a5"][0]),
                                  "height": px(PRINTABLE_MM["a5"][1])})
    assert tab.evaluate(WIDER_THAN_PAGE) == []
    assert_scans(svg, rx["qr"], "kiosk-qr-print-ru")
