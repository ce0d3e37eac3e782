"""End to end in headless Chromium: a doctor prescribes (INN chosen from the autocomplete) and
gets the QR code; a pharmacist scans it as a USB scanner types (digits, then Enter into the
focused input), dispenses part, then the rest; a forged code reads forged in red; with the hub
unreachable the banner says offline and dispensing still works. Screenshots at 1024x600 go to
screenshots/. Same browser rules as tests/test_ui_browser.py (its fixtures are reused)."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from helpers.browser import shot
from helpers.node import AMOXICILLIN
from test_ui_counter import forged
from werkzeug.serving import make_server

from edge_node.services import appointments, prescribing
from edge_node.web import create_app

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]



def sign_in(tab, base: str, username: str, pin: str, nxt: str) -> None:
    tab.goto(f"{base}/ui/desk/sign-in?lang=en&next={nxt}")
    tab.fill("#username", username)
    tab.fill("#pin", pin)
    tab.click("button[type='submit']")
    tab.wait_for_url(f"**{nxt}")


def scan_like_a_scanner(tab, code: str) -> None:
    """A USB scanner types into whatever holds the focus: the scan input must hold it."""
    assert tab.evaluate("document.activeElement.id") == "code"
    tab.keyboard.type(code)
    tab.keyboard.press("Enter")
    tab.wait_for_selector("#verdict")


def verdict(tab) -> str:
    return tab.get_attribute("#verdict", "data-verdict")


def dispense(tab, quantity: int) -> None:
    form = "form[data-dispense='1']"
    tab.fill(f"{form} input[name='quantity']", str(quantity))
    tab.fill(f"{form} input[name='product']", "Amoksil")
    tab.fill(f"{form} input[name='batch']", "B2311")
    tab.fill(f"{form} input[name='expiry']", "2031-01-31")
    tab.click(f"{form} button[type='submit']")
    tab.wait_for_selector(".msg-ok")


def test_doctor_prescribes_and_pharmacist_dispenses_in_two_parts(page, live, store,  # noqa: F811
                                                                pinned, actor_for):  # noqa: F811
    person = pinned["patient"]
    appointment = appointments.book(store, actor_for("registrar"),
                                    patient_id=person["patient_id"],
                                    practitioner_id=pinned["doctor_id"],
                                    starts_at=pinned["slot"], channel="kiosk",
                                    now=pinned["now"])
    appointments.check_in(store, actor_for("registrar"), appointment, now=pinned["now"])
    sign_in(page, live, "doctor", "2222", "/ui/desk/today")
    page.click("a[href$='/card']")
    page.check("input[name='reason'][value='visit']")
    page.click("form.form button[type='submit']")
    page.click("a[href$='/visit']")
    page.fill("#complaints", "Tomoq og'rig'i")
    page.fill("#q", "J02")
    page.press("#q", "Enter")
    page.click("button[name='add'][value='J02.9']")
    page.wait_for_selector("input[name='code'][value='J02.9']", state="attached")
    page.click("button[name='action'][value='save']")
    page.wait_for_url("**/card")
    page.click("a[data-hook='prescribe']")
    page.wait_for_url("**/prescribe")
    page.type("#inn-0", "amoxi")  # the suggestions come as he types
    page.wait_for_selector("[data-suggestions='0'] button[value='0:amoxicillin']")
    shot(page, "rx-1-autocomplete")
    page.click("[data-suggestions='0'] button[value='0:amoxicillin']")
    page.wait_for_selector("#form-0")
    assert "E-prescription required" in page.inner_text("fieldset[data-row='0']")
    page.fill("#quantity-0", "20")
    page.fill("#dosage-0", "1 kapsula kuniga 3 mahal, 7 kun")
    shot(page, "rx-2-prescribe-form")
    page.click("button[data-sign]")
    page.wait_for_selector("[data-qr] svg")
    shot(page, "rx-3-qr-code")
    row = store.one("SELECT prescription_id, qr FROM prescriptions")
    assert row["qr"].isdigit()

    page.click("form.userbox button")  # the doctor signs out; the pharmacist signs in
    sign_in(page, live, "pharmacist", "3333", "/ui/counter/")
    scan_like_a_scanner(page, row["qr"])
    assert verdict(page) == "valid"
    shot(page, "counter-1-valid")
    dispense(page, 12)
    assert verdict(page) == "partly_dispensed"
    assert page.inner_text("tr[data-item='1'] [data-remaining]") == "8"
    shot(page, "counter-2-partly-dispensed")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'code'")
    scan_like_a_scanner(page, row["qr"])  # the same code again: what remains
    assert verdict(page) == "partly_dispensed"
    dispense(page, 8)
    assert verdict(page) == "already_dispensed"
    assert "verdict-warn" in page.get_attribute("#verdict", "class")
    shot(page, "counter-3-already-dispensed")
    quantities = [r["quantity"] for r in store.query("SELECT quantity FROM dispenses"
                                                      " ORDER BY dispensed_at")]
    assert quantities == [12, 8]


def test_a_forged_code_shows_the_forged_verdict_in_red(page, live, store, seeded,  # noqa: F811
                                                       actor_for, clinic_credentials):
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials,
        patient_id=seeded["patient_rows"][0]["patient_id"], items=[AMOXICILLIN])
    sign_in(page, live, "pharmacist", "3333", "/ui/counter/")
    scan_like_a_scanner(page, forged(issued["qr"]))
    assert verdict(page) == "forged"
    assert "verdict-bad" in page.get_attribute("#verdict", "class")
    color = page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor")
    red, green, blue = (int(x) for x in re.findall(r"\d+", color)[:3])
    assert red > green and red > blue
    assert page.query_selector("form[data-dispense]") is None
    shot(page, "counter-4-forged")


@pytest.fixture
def offline_live(store, seeded, tmp_path, clinic_credentials, catalogues):  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    app = create_app({"DATABASE": str(tmp_path / "node.db"), "TESTING": True,
                      "SECRET_KEY": "test-secret", "BACKGROUND_JOBS": False,
                      "HUB_URL": f"http://127.0.0.1:{closed}", "UI_STATUS_CACHE_SECONDS": 0},
                     store=store, credentials=clinic_credentials)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_offline_banner_shows_and_verifying_still_works(page, offline_live, store, seeded,  # noqa: F811
                                                         actor_for, clinic_credentials):
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials,
        patient_id=seeded["patient_rows"][0]["patient_id"], items=[AMOXICILLIN])
    sign_in(page, offline_live, "pharmacist", "3333", "/ui/counter/")
    page.click("button[data-sync-now]")  # a sync attempt against the unreachable hub
    page.wait_for_selector(".msg-error")
    assert page.get_attribute(".node-status", "data-node-state") == "offline"
    banner = page.inner_text(".node-status")
    assert "Offline" in banner and "since" in banner and "Changes waiting to sync" in banner
    scan_like_a_scanner(page, issued["qr"])
    # Offline, the counter still verifies from the code alone. (This node is a clinic beside
    # a hub, which refuses a clinic's dispenses: it refuses them too, issue 11.5; a pharmacy
    # dispensing offline is tested in test_sync_outage.)
    assert verdict(page) == "valid"
    assert page.get_attribute(".node-status", "data-node-state") == "offline"
    shot(page, "counter-5-offline")
