"""The registrar and doctor workstation through the test client: sign-in, registering,
booking, the queue, the audited card, visits with ICD-10 diagnoses, orders, lab results,
and every form error (translated, and nothing changed)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from helpers.ui import escaped, event_count, post, staff_sign_in, text_of, translated

from edge_node.services import appointments, staff
from sync_protocol.identifiers import make_pinfl

pytestmark = pytest.mark.usefixtures("catalogues")


@pytest.fixture
def visit_today(store, pinned, actor_for):  # noqa: F811
    """The first patient checked in today (pinned clock) with their family doctor."""
    appointment = appointments.book(store, actor_for("registrar"),
                                    patient_id=pinned["patient"]["patient_id"],
                                    practitioner_id=pinned["doctor_id"],
                                    starts_at=pinned["slot"], channel="registry",
                                    now=pinned["now"])
    appointments.check_in(store, actor_for("registrar"), appointment, now=pinned["now"])
    return {**pinned, "appointment": appointment}


def _count(store, table: str) -> int:
    return store.one(f"SELECT COUNT(*) AS n FROM {table}")["n"]  # noqa: S608


def test_sign_in_with_a_wrong_pin_shows_the_message(client, store, seeded):
    client.get("/ui/desk/sign-in?lang=ru")
    response = post(client, "/ui/desk/sign-in", {"username": "registrar", "pin": "0000"})
    assert response.status_code == 401
    assert escaped(translated("ru", "Wrong username or PIN")) in response.text
    with client.session_transaction() as session:
        assert "staff_token" not in session


def test_pin_attempts_are_throttled(client, seeded):
    for _ in range(staff.MAX_FAILURES):
        post(client, "/ui/desk/sign-in", {"username": "registrar", "pin": "0000"})
    response = post(client, "/ui/desk/sign-in?lang=uz", {"username": "registrar",
                                                         "pin": "1111"})
    assert response.status_code == 429
    assert escaped(translated("uz", "Too many wrong PINs; try again in 15 minutes")) in \
        response.text


def test_sign_in_returns_to_the_page_asked_for_but_never_off_the_node(client, seeded):
    response = client.get("/ui/desk/queue")
    assert response.status_code == 302 and "next=" in response.headers["Location"]
    back = post(client, "/ui/desk/sign-in?next=/ui/desk/queue",
                {"username": "registrar", "pin": "1111", "next": "/ui/desk/queue"})
    assert back.headers["Location"].endswith("/ui/desk/queue")
    post(client, "/ui/desk/sign-out")
    away = post(client, "/ui/desk/sign-in", {"username": "registrar", "pin": "1111",
                                             "next": "//evil.example/"})
    assert away.headers["Location"].endswith("/ui/desk/")


def test_registrar_registers_a_patient_and_books_for_them(client, store, pinned):  # noqa: F811
    staff_sign_in(client, "registrar")
    pinfl = make_pinfl(date(1977, 4, 21), "female", district="262")
    response = post(client, "/ui/desk/patients/new", {
        "full_name": "Yangi Bemor Aliyevna", "phone": "+998 90 765 43 21", "pinfl": pinfl,
        "document": "AE 7654321", "family_doctor_id": pinned["doctor_id"]})
    assert response.status_code == 302
    row = store.one("SELECT * FROM patients WHERE pinfl = ?", (pinfl,))
    assert row["document"] == "AE7654321" and row["phone"] == "+998907654321"
    page = client.get(response.headers["Location"])
    assert "MED-" in page.text and "Yangi Bemor" in page.text
    found = client.get(f"/ui/desk/patients?q={pinfl}")
    assert found.headers["Location"].endswith(f"/ui/desk/patients/{row['patient_id']}")
    by_document = client.get("/ui/desk/patients?q=AE7654321")
    assert by_document.headers["Location"].endswith(row["patient_id"])
    booked = post(client, f"/ui/desk/patients/{row['patient_id']}/book",
                  {"practitioner_id": pinned["doctor_id"], "starts_at": pinned["slot"]})
    assert booked.status_code == 302
    assert store.one("SELECT channel FROM appointments WHERE patient_id = ?",
                     (row["patient_id"],))["channel"] == "registry"


REGISTER_ERRORS = [
    ({"full_name": "", "phone": "+998901234000", "pinfl": "{new}"},
     "Full name is required (2 to 200 characters)", {}),
    ({"full_name": "Test Bemor", "phone": "12345", "pinfl": "{new}"},
     "Phone number %(value)s is not a valid Uzbek number", {"value": "12345"}),
    ({"full_name": "Test Bemor", "phone": "+998901234000", "pinfl": "123"},
     "PINFL must have 14 digits, got %(count)s", {"count": 3}),
    ({"full_name": "Test Bemor", "phone": "+998901234000", "pinfl": "{taken}"},
     "A patient with this PINFL is already registered", {}),
    ({"full_name": "Test Bemor", "phone": "+998901234000", "document": "A1",
      "birth_date": "1990-01-01", "sex": "male"},
     "Identity document must be 2 Latin letters and 7 digits, e.g. AA1234567", {}),
    ({"full_name": "Test Bemor", "phone": "+998901234000"},
     "Give the PINFL or an identity document", {}),
]


@pytest.mark.parametrize("lang", ["uz", "ru"])
@pytest.mark.parametrize(("form", "msgid", "params"), REGISTER_ERRORS,
                         ids=[e[1][:30] for e in REGISTER_ERRORS])
def test_register_form_errors(client, store, seeded, lang, form, msgid, params):
    staff_sign_in(client, "registrar")
    client.get(f"/ui/desk/patients/new?lang={lang}")
    new = make_pinfl(date(1999, 9, 9), "male", district="263")
    data = {k: v.format(new=new, taken=seeded["patients"][0]["pinfl"]) for k, v in form.items()}
    before, patients_before = event_count(store), _count(store, "patients")
    response = post(client, "/ui/desk/patients/new", data)
    assert response.status_code in (409, 422)
    expected = translated(lang, msgid, **params)
    assert expected != msgid % params
    assert escaped(expected) in response.text
    assert event_count(store) == before and _count(store, "patients") == patients_before
    for key, value in data.items():  # what was typed stays in the form
        if value:
            assert f'value="{value}"' in response.text or key == "sex"


def test_find_unknown_patient_says_so(client, seeded):
    staff_sign_in(client, "registrar")
    pinfl = make_pinfl(date(1960, 6, 6), "male", district="777")
    response = client.get(f"/ui/desk/patients?q={pinfl}&lang=ru")
    assert response.status_code == 404
    assert escaped(translated("ru", "No patient with this identifier on this node")) in \
        response.text


def test_queue_shows_each_doctors_patients_and_checks_in(client, store, pinned,  # noqa: F811
                                                        actor_for):
    appointment = appointments.book(store, actor_for("registrar"),
                                    patient_id=pinned["patient"]["patient_id"],
                                    practitioner_id=pinned["doctor_id"],
                                    starts_at=pinned["slot"], channel="kiosk",
                                    now=pinned["now"])
    staff_sign_in(client, "registrar")
    queue = client.get(f"/ui/desk/queue?practitioner_id={pinned['doctor_id']}")
    assert pinned["patient"]["full_name"] in queue.text
    response = post(client, f"/ui/desk/appointments/{appointment}/check-in",
                    {"next": "/ui/desk/queue"})
    assert response.headers["Location"].endswith("/ui/desk/queue")
    page = client.get("/ui/desk/queue")
    assert "msg-ok" in page.text
    assert store.one("SELECT queue_number FROM appointments WHERE appointment_id = ?",
                     (appointment,))["queue_number"] == 1


def test_a_failed_action_is_explained_and_changes_nothing(client, store, visit_today):
    staff_sign_in(client, "registrar")
    client.get("/ui/desk/queue?lang=ru")
    before = event_count(store)
    page = post(client, f"/ui/desk/appointments/{visit_today['appointment']}/cancel",
                {"reason": "patient asked", "next": "/ui/desk/queue"})
    expected = translated("ru", "The appointment is %(status)s and can no longer be changed",
                          status="checked_in")
    assert escaped(expected) in page.text
    assert event_count(store) == before


def test_doctor_sees_today_opens_the_card_with_a_reason_and_records_a_visit(
        client, store, visit_today):
    staff_sign_in(client, "doctor")
    today = client.get("/ui/desk/today")
    assert visit_today["patient"]["full_name"] in today.text
    pid = visit_today["patient"]["patient_id"]
    reads = _count(store, "card_reads")
    asked = client.get(f"/ui/desk/patients/{pid}/card")
    assert 'name="reason"' in asked.text and _count(store, "card_reads") == reads
    post(client, f"/ui/desk/patients/{pid}/card", {"reason": "visit"})
    card = client.get(f"/ui/desk/patients/{pid}/card")
    assert card.status_code == 200
    row = store.one("SELECT * FROM card_reads ORDER BY id DESC LIMIT 1")
    assert row["reason"] == "visit" and row["patient_id"] == pid
    url = f"/ui/desk/patients/{pid}/visit?appointment_id={visit_today['appointment']}"
    found = post(client, url, {"q": "essential hypertension", "action": "search"})
    assert re.search(r'name="add" value="I10"', found.text)
    added = post(client, url, {"q": "essential hypertension", "add": "I10",
                               "complaints": "Bosh og'rig'i"})
    assert 'name="code" value="I10"' in added.text and "Bosh og" in added.text
    saved = post(client, url, {"code": ["I10", "E11.9"], "primary": "E11.9",
                               "complaints": "Bosh og'rig'i", "action": "save"})
    assert saved.status_code == 302
    diagnoses = store.query("SELECT code, is_primary FROM diagnoses")
    assert {(r["code"], r["is_primary"]) for r in diagnoses} == {("I10", 0), ("E11.9", 1)}
    assert store.one("SELECT status FROM appointments WHERE appointment_id = ?",
                     (visit_today["appointment"],))["status"] == "completed"
    card = client.get(f"/ui/desk/patients/{pid}/card").text
    visit_id = store.one("SELECT visit_id FROM visits")["visit_id"]
    assert "I10" in card and "Essential (primary) hypertension" in card
    post(client, f"/ui/desk/patients/{pid}/orders",
         {"visit_id": visit_id, "kind": "lab", "text": "Qonda qand"})
    assert store.one("SELECT text FROM orders")["text"] == "Qonda qand"
    post(client, f"/ui/desk/patients/{pid}/lab-results",
         {"test": "Glucose", "value": "7.8", "unit": "mmol/L", "flag": "high"})
    assert store.one("SELECT flag FROM lab_results")["flag"] == "high"


def test_icd10_suggestions_are_json_for_doctors(client, visit_today):
    staff_sign_in(client, "doctor")
    response = client.get("/ui/icd10?q=J06")
    assert response.is_json and response.json["results"][0]["code"].startswith("J06")


@pytest.mark.parametrize("lang", ["uz", "ru"])
def test_clinical_form_errors(client, store, visit_today, lang):
    staff_sign_in(client, "doctor")
    pid = visit_today["patient"]["patient_id"]
    client.get(f"/ui/desk/today?lang={lang}")
    before = event_count(store)
    bad_code = post(client, f"/ui/desk/patients/{pid}/visit", {"add": "Z99.999"})
    assert escaped(translated(lang, "%(value)s is not an ICD-10 diagnosis code",
                              value="Z99.999")) in bad_code.text
    twice = post(client, f"/ui/desk/patients/{pid}/visit", {"code": ["I10", "I10.0"],
                                                            "action": "save"})
    assert twice.status_code == 422
    no_test = post(client, f"/ui/desk/patients/{pid}/lab-results", {"value": "5"})
    assert escaped(translated(lang, "%(field)s is required",
                              field=translated(lang, "Test"))) in no_test.text
    bad_reason = post(client, f"/ui/desk/patients/{pid}/card", {"reason": "curiosity"})
    assert bad_reason.status_code == 422 and "data-error" in bad_reason.text
    post(client, f"/ui/desk/patients/{pid}/orders", {"visit_id": "x", "kind": "lab",
                                                     "text": ""})
    shown = client.get(f"/ui/desk/patients/{pid}/card").text  # the reason form, with the flash
    assert escaped(translated(lang, "%(field)s is required",
                              field=translated(lang, "Order text"))) in shown
    assert event_count(store) == before
    assert _count(store, "card_reads") == 0


def test_a_registrar_cannot_open_the_card(client, visit_today):
    staff_sign_in(client, "registrar")
    response = client.get(f"/ui/desk/patients/{visit_today['patient']['patient_id']}/card"
                          "?lang=ru")
    assert response.status_code == 403
    page = text_of(response.text)  # the refusal in words, never the permission's code
    assert "read_card" not in page
    assert translated("ru", "open medical cards") in page
