"""Writing a prescription through the test client: choosing by INN, the rules shown while
choosing, errors per item field, the QR code and the printable page, chronic marking,
cancelling, and every route for every role."""

from __future__ import annotations

import re

import pytest
from helpers.ui import STAFF, escaped, event_count, post, staff_sign_in, translated

from edge_node.services import prescribing

pytestmark = pytest.mark.usefixtures("catalogues")

ROW = {"rows": "1", "inn_0": "amoxicillin", "form_0": "capsule", "strength_0": "500 mg",
       "quantity_0": "20", "dosage_0": "1 kapsula kuniga 3 mahal"}


@pytest.fixture
def patient(seeded):
    return seeded["patient_rows"][0]


def url(patient) -> str:
    return f"/ui/desk/patients/{patient['patient_id']}/prescribe"


def prescriptions(store) -> int:
    return store.one("SELECT COUNT(*) AS n FROM prescriptions")["n"]


def test_routes_for_each_role(client, store, patient, actor_for, clinic_credentials):
    issued = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                            patient_id=patient["patient_id"],
                                            items=[{k[:-2]: v for k, v in ROW.items()
                                                    if k != "rows"} | {"quantity": 20}])
    routes = [("GET", url(patient), "prescribe"), ("POST", url(patient), "prescribe"),
              ("POST", f"/ui/desk/patients/{patient['patient_id']}/chronic", "write_clinical"),
              ("GET", "/ui/drugs?q=amox", "drugs"),
              ("GET", f"/ui/desk/prescriptions/{issued['prescription_id']}", "prescribe"),
              ("POST", f"/ui/desk/prescriptions/{issued['prescription_id']}/cancel",
               "prescribe")]
    allowed = {"doctor": {"prescribe", "write_clinical", "drugs"}, "registrar": {"drugs"}}
    for who in ("anonymous", *STAFF):
        client.cookie_jar.clear() if hasattr(client, "cookie_jar") else None
        with client.session_transaction() as session:
            session.clear()
        if who != "anonymous":
            staff_sign_in(client, who)
        for method, address, rule in routes:
            response = client.get(address) if method == "GET" else post(client, address, {})
            where = f"{who}: {method} {address}"
            if who == "anonymous":
                assert response.status_code == 302 and "/sign-in" in \
                    response.headers["Location"], where
            elif rule in allowed.get(who, ()):
                assert response.status_code in (200, 302, 422), (where, response.status_code)
            else:
                assert response.status_code == 403, (where, response.status_code)


def test_the_card_links_to_the_writing_screen(client, patient):
    staff_sign_in(client, "doctor")
    post(client, f"/ui/desk/patients/{patient['patient_id']}/card", {"reason": "visit"})
    card = client.get(f"/ui/desk/patients/{patient['patient_id']}/card").text
    assert f'href="{url(patient)}" data-hook="prescribe"' in card


def test_find_then_pick_shows_forms_strengths_and_rules(client, patient):
    staff_sign_in(client, "doctor")
    found = post(client, url(patient) + "?lang=ru", {"rows": "1", "inn_0": "амокси",
                                                    "find": "0"}).text
    assert 'value="0:amoxicillin"' in found
    assert escaped(translated("ru", "E-prescription required")) in found
    picked = post(client, url(patient) + "?lang=ru", {"rows": "1", "inn_0": "амокси",
                                                     "pick": "0:amoxicillin"}).text
    assert re.search(r'<option value="capsule"', picked)
    assert 'name="strength_0"' in picked
    assert escaped(translated("ru", "Valid %(days)s days", days=10)) in picked


def test_a_narcotic_is_refused_with_a_clear_message(client, store, patient):
    staff_sign_in(client, "doctor")
    page = post(client, url(patient), {"rows": "1", "inn_0": "morphine", "pick": "0:morphine"})
    assert "tag tag-bad" in page.text
    assert "is a narcotic drug and cannot be prescribed electronically" in page.text
    before = event_count(store)
    signed = post(client, url(patient), {"rows": "1", "inn_0": "morphine", "action": "sign"})
    assert signed.status_code == 422 and event_count(store) == before


def test_chronic_patient_sees_the_longer_validity_and_repeats(client, store, patient):
    staff_sign_in(client, "doctor")
    assert post(client, f"/ui/desk/patients/{patient['patient_id']}/chronic",
                {"code": "I10"}).status_code == 302
    page = post(client, url(patient), {"rows": "1", "inn_0": "amlodipine",
                                       "pick": "0:amlodipine"}).text
    assert "data-chronic" in page
    assert "Chronic patient: valid up to 90 days" in page
    assert 'name="repeats_0"' in page and 'type="number"' in page


def test_at_most_five_items(client, patient):
    staff_sign_in(client, "doctor")
    page = post(client, url(patient), {"rows": "4", "action": "add"}).text
    assert page.count('class="rx-row') == 5
    assert "data-max-items" in page and 'value="add"' not in page
    page = post(client, url(patient), {"rows": "9", "action": "add"}).text
    assert page.count('class="rx-row') == 5


def test_signing_shows_the_qr_code_and_a_printable_page(client, store, patient):
    staff_sign_in(client, "doctor")
    response = post(client, url(patient), {**ROW, "action": "sign"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    row = store.one("SELECT prescription_id, number, qr FROM prescriptions")
    assert "<svg" in page and "data-qr" in page and "data-print" in page
    assert row["number"] in page and patient["full_name"] in page
    assert "1 kapsula kuniga 3 mahal" in page
    assert 'data-size="a5"' in page
    a6 = client.get(response.headers["Location"] + "?size=a6").text
    assert 'data-size="a6"' in a6


@pytest.mark.parametrize(("change", "field", "msgid", "params"), [
    ({"quantity_0": "0"}, "quantity", "The quantity must be at least 1", {}),
    ({"quantity_0": "many"}, "quantity", "The quantity must be a whole number", {}),
    ({"quantity_0": "400"}, "quantity", "The quantity can be at most %(max)s %(unit)s per fill",
     {"max": 360, "unit": "capsule"}),
    ({"dosage_0": ""}, "dosage", "Write how to take %(inn)s", {"inn": "amoxicillin"}),
    ({"strength_0": "900 mg"}, "strength",
     "%(inn)s %(form)s does not come in %(strength)s; available: %(available)s", None),
    ({"inn_0": "unobtainium"}, "inn",
     "Unknown drug %(inn)s: prescribe by an INN from the catalogue", {"inn": "unobtainium"}),
    ({"repeats_0": "2", "min_days_between_fills_0": "7"}, "repeats",
     "Repeats are only for patients with chronic conditions", {}),
])
def test_item_errors_are_shown_at_their_field_translated(client, store, patient, change,
                                                         field, msgid, params):
    staff_sign_in(client, "doctor")
    before = event_count(store)
    response = post(client, url(patient) + "?lang=uz", {**ROW, **change, "action": "sign"})
    assert response.status_code == 422
    assert "data-row-error" in response.text
    if params is not None:
        assert escaped(translated("uz", msgid, **params)) in response.text
    if field != "repeats":  # repeats are not offered to a non-chronic patient at all
        assert re.search(rf'has-error">\s*<label for="{field}-0"', response.text), field
    assert event_count(store) == before and prescriptions(store) == 0


def test_the_second_item_error_points_at_the_second_row(client, store, patient):
    staff_sign_in(client, "doctor")
    rows = {**ROW, "rows": "2", "inn_1": "amoxicillin", "form_1": "capsule",
            "strength_1": "500 mg", "quantity_1": "10", "dosage_1": "x", "action": "sign"}
    response = post(client, url(patient), rows)
    assert response.status_code == 422
    fieldset = re.search(r'<fieldset class="rx-row has-error" data-row="(\d)"', response.text)
    assert fieldset.group(1) == "1"  # duplicate INN on the second line


def test_chronic_marking_errors(client, store, patient):
    staff_sign_in(client, "doctor")
    before = event_count(store)
    response = post(client, f"/ui/desk/patients/{patient['patient_id']}/chronic?lang=ru",
                    {"code": "ZZZ"})
    assert response.status_code in (404, 422)
    assert "data-error" in response.text and event_count(store) == before


def test_cancel_needs_a_reason_and_the_prescriber(client, store, patient, actor_for,
                                                  clinic_credentials):
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials, patient_id=patient["patient_id"],
        items=[{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
                "dosage": "x"}])
    address = f"/ui/desk/prescriptions/{issued['prescription_id']}/cancel"
    staff_sign_in(client, "doctor2")  # another doctor: sees no cancel form, may not cancel
    assert "Cancel the prescription" not in client.get(address[:-7]).text
    assert post(client, address, {"reason": "x"}).status_code == 403
    post(client, "/ui/desk/sign-out")
    staff_sign_in(client, "doctor")
    before = event_count(store)
    empty = post(client, address + "?lang=ru", {"reason": " "})
    assert empty.status_code == 422
    assert escaped(translated("ru", "Say why the prescription is cancelled")) in empty.text
    assert event_count(store) == before
    done = post(client, address, {"reason": "allergy"})
    assert done.status_code == 302
    assert store.one("SELECT status FROM prescriptions")["status"] == "cancelled"


def test_drug_suggestions_json(client, patient):
    staff_sign_in(client, "doctor")
    data = client.get("/ui/drugs?q=amox&lang=en").json
    assert data["results"][0]["inn"].startswith("amoxicillin")
    assert {"tone": "warn", "text": "E-prescription required"} in data["results"][0]["badges"]
    narcotic = client.get("/ui/drugs?q=morph").json["results"][0]
    assert narcotic["refused"] is True
