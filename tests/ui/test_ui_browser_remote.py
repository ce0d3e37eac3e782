"""End to end in headless Chromium: a call-centre request reaches the clinic, the doctor finds
it from the navigation's count, approves it by writing the prescription (INN chosen from the
autocomplete), and a pharmacist opens it with the patient's document and the pickup code.
Same browser rules as tests/test_ui_browser.py (its fixtures are reused)."""

from __future__ import annotations

import pytest
from helpers.browser import shot
from test_ui_browser_rx import sign_in, verdict
from test_ui_remote_requests import REQUEST_TEXT, ask, hub  # noqa: F401

from edge_node.services import remote_requests

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]


def test_doctor_approves_a_request_and_the_pharmacy_picks_it_up(page, live, store,  # noqa: F811
                                                                 seeded, hub):  # noqa: F811
    request_id = ask(store, seeded, hub)
    sign_in(page, live, "doctor", "2222", "/ui/desk/today")
    assert page.inner_text("[data-count='requests']") == "1"
    page.click("a[data-nav='requests']")
    page.wait_for_selector(f"tr[data-request='{request_id}']")
    assert REQUEST_TEXT in page.inner_text(f"tr[data-request='{request_id}']")
    shot(page, "remote-1-requests")
    page.click(f"tr[data-request='{request_id}'] a")
    page.click("a[data-approve]")
    page.wait_for_url("**/prescribe")
    page.type("#inn-0", "amoxi")
    page.wait_for_selector("[data-suggestions='0'] button[value='0:amoxicillin']")
    page.click("[data-suggestions='0'] button[value='0:amoxicillin']")
    page.wait_for_selector("#form-0")
    page.fill("#quantity-0", "20")
    page.fill("#dosage-0", "1 kapsula kuniga 3 mahal, 7 kun")
    page.fill("#note", "7 kun")
    shot(page, "remote-2-approve-form")
    page.click("button[data-sign]")
    page.wait_for_selector("[data-qr] svg")
    row = store.one("SELECT status, prescription_id, pickup_code FROM remote_requests")
    assert row["status"] == remote_requests.APPROVED and row["prescription_id"]
    assert page.query_selector("[data-count='requests']") is None

    page.click("form.userbox button")
    sign_in(page, live, "pharmacist", "3333", "/ui/counter/pickup")
    page.fill("#identity", seeded["patient_rows"][0]["document"])
    page.fill("#pickup-code", row["pickup_code"])
    page.click("form[data-pickup] button[type='submit']")
    page.wait_for_selector("#verdict")
    assert verdict(page) == "valid"
    assert page.query_selector("form[data-dispense='1']") is not None
    shot(page, "remote-3-pickup-verdict")
