"""The pharmacy counter with the hub's claims, in headless Chromium (issue 13): an online
grant recorded as online_claimed; an online refusal in words (where and when) and the hub's
"already dispensed elsewhere"; a hub that does not answer within the claim timeout, then the
amber "valid here" verdict and an offline dispense. Two pharmacy nodes served on loopback, the
hub in-process behind their real signed client (helpers.transports). Screenshots at 1024x600
go to screenshots/."""

from __future__ import annotations

import json
import re
import socket

import pytest
from helpers.browser import shot
from helpers.enrolments import CLINIC, PHARMACY, PHARMACY2
from helpers.node import AMOXICILLIN
from helpers.sync_world import Hub, Node
from test_ui_browser_rx import dispense, scan_like_a_scanner, sign_in, verdict

from edge_node.services import online_dispense, prescribing

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]

HUB_URL = "http://hub.invalid"  # never resolved: the transport carries it in-process
PACK = {"product": "Amoksil", "batch": "B2311", "expiry": "2031-01-31"}


@pytest.fixture
def world(tmp_path, sync_pki, node_templates):
    hub = Hub.start(tmp_path, sync_pki, serve=False)
    clinic = Node.start(CLINIC, tmp_path, sync_pki, node_templates, HUB_URL, web=False,
                        transport=hub.transport())
    one, two = (Node.start(role, tmp_path, sync_pki, node_templates, HUB_URL, serve=True,
                           transport=hub.transport()) for role in (PHARMACY, PHARMACY2))
    patient = clinic.store.one("SELECT patient_id FROM patients ORDER BY pinfl")
    rx = prescribing.issue_prescription(clinic.store, clinic.actor("doctor"),
                                        clinic.credentials, patient_id=patient["patient_id"],
                                        items=[AMOXICILLIN])
    for node in (clinic, one, two):
        assert node.sync()["ok"]
    yield {"hub": hub, "one": one, "two": two, "rx": rx}
    for node in (clinic, one, two):
        node.close()
    hub.close()


def modes(node: Node) -> list[str]:
    return [json.loads(r["payload"])["mode"] for r in node.store.query(
        "SELECT payload FROM events WHERE origin = ? AND type = 'MedicationDispensed'",
        (node.node_id,))]


def counter(tab, node: Node) -> None:
    sign_in(tab, node.server.url, "pharmacist", "3333", "/ui/counter/")


def test_online_grant(page, world):  # noqa: F811
    one = world["one"]
    counter(page, one)
    scan_like_a_scanner(page, world["rx"]["qr"])
    assert verdict(page) == "valid"
    assert "verdict-ok" in page.get_attribute("#verdict", "class")
    assert page.inner_text("tr[data-item='1'] [data-hub-left]") == "The hub: 20"
    shot(page, "claims-1-online-valid")
    dispense(page, 20)
    assert verdict(page) == "already_dispensed"
    assert modes(one) == ["online_claimed"]
    with world["hub"].storage.reader() as tx:
        assert len(tx.query("SELECT * FROM hub_claims")) == 1
    shot(page, "claims-2-online-dispensed")


def test_online_refusal(page, world):  # noqa: F811
    one, two = world["one"], world["two"]
    counter(page, two)
    scan_like_a_scanner(page, world["rx"]["qr"])
    assert verdict(page) == "valid"
    # Meanwhile the other pharmacy claims and hands over the whole prescription.
    online_dispense.dispense_with_hub(
        one.store, one.actor("pharmacist"), one.client, config=one.app.config,
        prescription_id=world["rx"]["prescription_id"], item_no=1, quantity=20,
        code=world["rx"]["qr"], **PACK)
    form = "form[data-dispense='1']"
    page.fill(f"{form} input[name='quantity']", "20")
    page.fill(f"{form} input[name='product']", "Amoksil")
    page.fill(f"{form} input[name='batch']", "B2311")
    page.fill(f"{form} input[name='expiry']", "2031-01-31")
    page.click(f"{form} button[type='submit']")
    error = page.inner_text("[data-error]")
    assert re.search(r"Refused by the hub: being dispensed at 7-son dorixona \(claimed at"
                     r" \d+ \w+ \d{4}, \d\d:\d\d\)", error), error
    assert modes(two) == []
    shot(page, "claims-3-online-refused")
    assert one.sync()["ok"]
    scan_like_a_scanner(page, world["rx"]["qr"])
    text = " ".join(page.text_content("#verdict").split())
    assert "Already dispensed elsewhere" in text
    assert re.search(r"Dispensed at 7-son dorixona on \d+ \w+ \d{4}, \d\d:\d\d", text), text
    assert page.query_selector("form[data-dispense]") is None
    shot(page, "claims-4-dispensed-elsewhere")


def test_hub_timeout_then_offline_dispense_with_the_amber_verdict(page, world):  # noqa: F811
    two = world["two"]
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        two.client.base_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        counter(page, two)
        scan_like_a_scanner(page, world["rx"]["qr"])
        assert verdict(page) == "valid"
        head = " ".join(page.text_content("#verdict .verdict-head").split())
        assert "Valid here" in head and "The hub did not answer in time." in head
        assert "Dispensing at other pharmacies since" in head and "is not known" in head
        assert "verdict-warn" in page.get_attribute("#verdict", "class")
        color = page.eval_on_selector("#verdict", "e => getComputedStyle(e).backgroundColor")
        red, green, blue = (int(x) for x in re.findall(r"\d+", color)[:3])
        assert red > blue and green > blue  # amber, not green or red
        button = "form[data-dispense='1'] button[data-dispense-offline]"
        assert page.inner_text(button) == "Dispense offline"
        shot(page, "claims-5-hub-timeout-amber")
        dispense(page, 20)
    assert verdict(page) == "already_dispensed"
    assert modes(two) == ["offline"]
    with world["hub"].storage.reader() as tx:
        assert tx.query("SELECT * FROM hub_claims") == []
    shot(page, "claims-6-offline-dispensed")


PLACEHOLDER_ROOM = """() => {
  const input = document.getElementById("code");
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [context.measureText(input.placeholder).width, room];
}"""


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_the_scan_fields_placeholder_fits(page, live, seeded, lang):  # noqa: F811
    """Issue 12.10: the scan field's placeholder is not cut off, at the counter's sizes."""
    sign_in(page, live, "pharmacist", "3333", "/ui/counter/")
    for width, height in ((800, 480), (1024, 600), (1280, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live}/ui/counter/?lang={lang}")
        needed, room = page.evaluate(PLACEHOLDER_ROOM)
        assert needed <= room, (lang, width, needed, room)
    shot(page, f"counter-scan-placeholder-{lang}")
