"""Paper fallback screens through the test client: the printable blank with a held pad's
serial, entering a paper prescription and a paper dispense (errors translated, nothing
changed), every route for every role, and CSRF on every form of the new screens."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from helpers.node import RemoteNode, receive
from helpers.ui import STAFF, escaped, event_count, post, staff_sign_in, translated

from edge_node.services import prescribing
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import TASHKENT, utc_now

pytestmark = pytest.mark.usefixtures("catalogues")



@pytest.fixture
def pad(store, seeded):
    pad_id = new_ulid()
    receive(store, [RemoteNode("hub").event("PaperPadAllocated", {
        "pad_id": pad_id, "facility_id": seeded["facility_id"], "series": "TAS",
        "first_serial": 100, "last_serial": 199})])
    return pad_id


def written(hours: int = 3) -> dict:
    moment = (utc_now() - timedelta(hours=hours)).astimezone(TASHKENT)
    return {"day": moment.date().isoformat(), "time": moment.strftime("%H:%M")}


def rx_form(seeded, **change) -> dict:
    return {"paper_serial": "TAS-000123", "paper_reason": "outage",
            "practitioner_id": seeded["doctors"][0]["practitioner_id"], **written(),
            "inn_0": "amoxicillin", "form_0": "capsule", "strength_0": "500 mg",
            "quantity_0": "20", "dosage_0": "1x3", **change}


def dispense_form(**change) -> dict:
    return {"paper_serial": "TAS-000123", "patient_document": "AA1234567",
            "paper_reason": "outage", **written(), "inn_0": "amoxicillin", "form_0": "capsule",
            "strength_0": "500 mg", "quantity_0": "20", "product_0": "Amoksil",
            "batch_0": "B1", "expiry_0": "2031-01-01", **change}


def test_routes_for_each_role(client, seeded, pad):
    patient = seeded["patient_rows"][0]["patient_id"]
    routes = [("GET", f"/ui/desk/patients/{patient}/paper-prescription", "writer"),
              ("POST", f"/ui/desk/patients/{patient}/paper-prescription", "writer"),
              ("GET", "/ui/desk/paper-blank", "writer"),
              ("GET", f"/ui/desk/paper-blank?pad={pad}&number=150", "writer"),
              ("GET", "/ui/counter/paper", "pharmacist"),
              ("POST", "/ui/counter/paper", "pharmacist")]
    for who in ("anonymous", *STAFF):
        with client.session_transaction() as session:
            session.clear()
        if who != "anonymous":
            staff_sign_in(client, who)
        for method, address, rule in routes:
            response = client.get(address) if method == "GET" else post(client, address, {})
            where = f"{who}: {method} {address}"
            allowed = who == "pharmacist" if rule == "pharmacist" else who in ("registrar",
                                                                               "doctor")
            if who == "anonymous":
                assert response.status_code == 302, where
            elif allowed:
                assert response.status_code in (200, 302, 422), (where, response.status_code)
            else:
                assert response.status_code == 403, (where, response.status_code)


def test_blank_form_carries_a_serial_of_a_held_pad(client, seeded, pad):
    staff_sign_in(client, "registrar")
    page = client.get(f"/ui/desk/paper-blank?pad={pad}&number=150").text
    assert re.search(r"data-serial data-i18n=\"no\">TAS-000150<", page)
    outside = client.get(f"/ui/desk/paper-blank?pad={pad}&number=500&lang=ru")
    assert outside.status_code == 422 and "data-serial" not in outside.text
    assert escaped(translated("ru", "Choose a number from %(first)s to %(last)s", first=100,
                              last=199)) in outside.text


def test_blank_form_without_pads_says_so(client, seeded):
    staff_sign_in(client, "doctor")
    assert "data-no-pads" in client.get("/ui/desk/paper-blank").text


def test_registrar_enters_a_paper_prescription(client, store, seeded, pad):
    staff_sign_in(client, "registrar")
    patient = seeded["patient_rows"][0]["patient_id"]
    response = post(client, f"/ui/desk/patients/{patient}/paper-prescription",
                    rx_form(seeded, paper_serial="TAS-000150"))
    assert response.status_code == 302
    row = store.one("SELECT kind, paper_serial, paper_reason FROM prescriptions")
    assert tuple(row) == ("paper", "TAS-000150", "outage")
    assert "is entered" in client.get(response.headers["Location"]).text


def test_a_serial_not_held_is_entered_with_a_warning(client, store, seeded):
    staff_sign_in(client, "doctor")
    patient = seeded["patient_rows"][0]["patient_id"]
    response = post(client, f"/ui/desk/patients/{patient}/paper-prescription",
                    rx_form(seeded))
    page = client.get(response.headers["Location"]).text
    assert "msg-warn" in page and "not from a pad this facility holds" in page


@pytest.mark.parametrize(("change", "msgid", "params", "row"), [
    ({"paper_serial": "123"}, "A paper serial is the pad's letters and number, e.g. "
     "TAS-000123", {}, None),
    ({"paper_reason": ""}, "Say why paper was used: outage or emergency", {}, None),
    ({"day": "yesterday"}, "Give the date and time written on the paper", {}, None),
    ({"day": (utc_now() + timedelta(days=2)).date().isoformat()},
     "The time on the paper cannot be in the future", {}, None),
    ({"inn_0": "", "form_0": "", "strength_0": "", "quantity_0": "", "dosage_0": "",
      "inn_2": "morphine", "form_2": "solution for injection", "strength_2": "10 mg/ml",
      "quantity_2": "1", "dosage_2": "x"}, None, None, 2),
    ({"quantity_0": "x"}, "The quantity must be a whole number", {}, 0),
])
def test_paper_prescription_errors_change_nothing(client, store, seeded, change, msgid,
                                                  params, row):
    staff_sign_in(client, "registrar")
    patient = seeded["patient_rows"][0]["patient_id"]
    before = event_count(store)
    response = post(client, f"/ui/desk/patients/{patient}/paper-prescription?lang=ru",
                    rx_form(seeded, **change))
    assert response.status_code in (409, 422)
    if msgid:
        assert escaped(translated("ru", msgid, **params)) in response.text
    if row is not None:  # shown on the row where it was typed, not the item's index
        assert f'<tr data-row="{row}" class="has-error">' in response.text
    assert event_count(store) == before


def test_pharmacist_enters_a_paper_dispense(client, store, seeded):
    staff_sign_in(client, "pharmacist")
    response = post(client, "/ui/counter/paper", dispense_form())
    assert response.status_code == 302
    row = store.one("SELECT paper_serial, patient_document, items FROM paper_dispenses")
    assert row["paper_serial"] == "TAS-000123" and "Amoksil" in row["items"]


@pytest.mark.parametrize(("change", "msgid", "params"), [
    ({"paper_serial": ""}, "Give the paper serial or the e-prescription number", {}),
    ({"patient_document": ""}, "Give the patient's identity document or PINFL", {}),
    ({"expiry_0": "soon"}, "Expiry date must be YYYY-MM-DD", {}),
    ({"quantity_0": "0"}, "Quantity must be a whole number of at least 1", {}),
    ({"time": "25:99"}, "Give the date and time written on the paper", {}),
])
def test_paper_dispense_errors_change_nothing(client, store, seeded, change, msgid, params):
    staff_sign_in(client, "pharmacist")
    before = event_count(store)
    response = post(client, "/ui/counter/paper?lang=uz", dispense_form(**change))
    assert response.status_code == 422
    assert escaped(translated("uz", msgid, **params)) in response.text
    assert event_count(store) == before


# -- CSRF on every form of the prescribing, counter, paper and sync screens ----------------

NEW_BLUEPRINTS = ("prescribe", "counter", "paper_ui", "sync_ui")


def _post_rules(app) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if "POST" in rule.methods and rule.endpoint.split(".")[0] in NEW_BLUEPRINTS)


@pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "wrong"])
@pytest.mark.parametrize("who", ["doctor", "pharmacist"])
def test_a_post_without_the_sessions_csrf_token_is_refused(app, client, store, seeded,
                                                           actor_for, clinic_credentials,
                                                           token, who):
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials,
        patient_id=seeded["patient_rows"][0]["patient_id"],
        items=[{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
                "dosage": "x"}])
    rules = _post_rules(app)
    assert len(rules) == 12, rules
    staff_sign_in(client, who)
    post(client, "/ui/counter/scan", {"code": issued["qr"]}) if who == "pharmacist" else None
    before = event_count(store)
    for rule in rules:
        address = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: {
            "patient_id": seeded["patient_rows"][0]["patient_id"],
            "prescription_id": issued["prescription_id"],
            "request_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"}[m.group(1)], rule)
        data = {"reason": "x", "code": "I10", "action": "sign", **rx_form(seeded),
                **dispense_form(), "prescription_id": issued["prescription_id"],
                "item_no": "1", "remaining": "20", "quantity": "1", "product": "A",
                "batch": "B", "expiry": "2031-01-01"}
        if token:
            data["csrf_token"] = token
        response = client.post(address, data=data)
        assert response.status_code == 400, address
        assert "<html" in response.text
    assert event_count(store) == before
