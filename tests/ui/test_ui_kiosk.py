"""The reception kiosk through the test client: identify, book, move, cancel, check in, slip,
the idle rule, throttling, and every form error (translated, and nothing changed)."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import date, timedelta

import pytest
from helpers.ui import escaped, event_count, kiosk_sign_in, post, text_of, translated

from edge_node.services import appointments, kiosk_identity, patients, prescribing, sms
from kiosk_ui import kiosk_session
from sync_protocol.identifiers import make_pinfl
from sync_protocol.timeutil import to_instant

pytestmark = pytest.mark.usefixtures("catalogues")


@pytest.fixture
def me(client, pinned):  # noqa: F811
    """The first demo patient, identified at the kiosk, with the clock pinned."""
    kiosk_sign_in(client, pinned["patient"])
    return pinned


def _failures(store) -> int:
    return store.one("SELECT COUNT(*) AS n FROM sign_in_failures")["n"]


def test_start_page_offers_the_three_languages_uzbek_first(client, seeded):
    html = client.get("/ui/kiosk/").text
    names = re.findall(r'class="btn btn-lang"[^>]*>([^<]+)<', html)
    assert names == ["O‘zbekcha", "Русский", "English"]


def test_the_keypad_works_without_javascript(client, seeded):
    client.get("/ui/kiosk/identify")
    response = post(client, "/ui/kiosk/identify", {"pinfl": "1234", "key": "5"})
    assert 'value="12345"' in response.text
    response = post(client, "/ui/kiosk/identify", {"pinfl": "12345", "key": "back"})
    assert 'value="1234"' in response.text
    response = post(client, "/ui/kiosk/identify", {"pinfl": "1234", "key": "clear"})
    assert 'value=""' in response.text


def test_a_patient_identifies_books_and_checks_in(client, store, me):
    home = client.get("/ui/kiosk/home")
    assert "Rahimov Bobur" in home.text and home.headers["Cache-Control"] == "no-store"
    doctors = client.get("/ui/kiosk/book").text
    assert f"/ui/kiosk/book/{me['doctor_id']}" in doctors
    slots = client.get(f"/ui/kiosk/book/{me['doctor_id']}").text
    assert f'value="{me["slot"]}"' in slots
    booked = post(client, f"/ui/kiosk/book/{me['doctor_id']}",
                  {"starts_at": me["slot"], "confirm": "1"})
    assert booked.status_code == 302 and "done=booked" in booked.headers["Location"]
    appointment_id = booked.headers["Location"].split("/appointments/")[1].split("?")[0]
    row = store.one("SELECT * FROM appointments WHERE appointment_id = ?", (appointment_id,))
    assert row["channel"] == "kiosk" and row["status"] == "booked"
    checked = post(client, f"/ui/kiosk/appointments/{appointment_id}/check-in")
    assert checked.status_code == 302
    page = client.get(checked.headers["Location"])
    assert re.search(r"data-queue-number>\s*<span>[^<]+</span>\s*<strong>1</strong>", page.text)
    slip = client.get(f"/ui/kiosk/appointments/{appointment_id}/slip").text
    assert "data-print" in slip and "Toshkent shahar 12-son" in slip


def test_move_and_cancel(client, store, me, actor_for):
    appointment_id = appointments.book(store, actor_for("registrar"),
                                       patient_id=me["patient"]["patient_id"],
                                       practitioner_id=me["doctor_id"], starts_at=me["slot"],
                                       channel="registry", now=me["now"])
    later = store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at > ?"
                      " ORDER BY starts_at LIMIT 1", (me["doctor_id"], me["slot"]))["starts_at"]
    moved = post(client, f"/ui/kiosk/appointments/{appointment_id}/move",
                 {"starts_at": later, "confirm": "1"})
    assert moved.status_code == 302
    assert store.one("SELECT starts_at FROM appointments WHERE appointment_id = ?",
                     (appointment_id,))["starts_at"] == later
    confirm = client.get(f"/ui/kiosk/appointments/{appointment_id}/cancel")
    assert confirm.status_code == 200 and store.one(
        "SELECT status FROM appointments WHERE appointment_id = ?",
        (appointment_id,))["status"] == "booked"
    post(client, f"/ui/kiosk/appointments/{appointment_id}/cancel")
    assert store.one("SELECT status FROM appointments WHERE appointment_id = ?",
                     (appointment_id,))["status"] == "cancelled"
    assert appointment_id not in client.get("/ui/kiosk/home").text


# -- form errors: the translated message, and nothing changed ------------------------------

# A patient is told what to do, not which digits of the number are wrong (issue 12, point 9).
COUNT_DIGITS = ("A PINFL has 14 digits and %(count)s were entered. Type the whole number as"
                " printed on your passport or ID card.")
MISTYPED = ("This is not a valid PINFL: a digit may be mistyped. Compare it with the 14-digit"
            " number on your passport or ID card and type it again. If it still fails, ask at"
            " the registry desk.")
WRONG_PINFLS = [
    ("1234", COUNT_DIGITS, {"count": 4}),
    ("71403850261101", MISTYPED, {}),  # century digit
    ("31403850000015", MISTYPED, {}),  # district 000
    ("33213850261101", MISTYPED, {}),  # no 32nd day: birth date
]


@pytest.mark.parametrize("lang", ["uz", "ru"])
@pytest.mark.parametrize(("pinfl", "msgid", "params"), WRONG_PINFLS)
def test_a_wrong_pinfl_says_what_to_do(client, store, seeded, lang, pinfl, msgid, params):
    client.get(f"/ui/kiosk/identify?lang={lang}")
    before = event_count(store)
    response = post(client, "/ui/kiosk/identify", {"pinfl": pinfl})
    assert response.status_code == 422
    expected = translated(lang, msgid, **params)
    assert expected != msgid % params
    assert escaped(expected) in response.text
    assert "DDMMYY" not in response.text and "digits 8-10" not in response.text
    with client.session_transaction() as session:
        assert kiosk_session.PINFL not in session
    assert event_count(store) == before and _failures(store) == 0


def test_a_wrong_check_digit_says_what_to_do(client, seeded):
    good = seeded["patients"][0]["pinfl"]
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    client.get("/ui/kiosk/identify?lang=en")
    response = post(client, "/ui/kiosk/identify", {"pinfl": bad})
    assert MISTYPED in text_of(response.text)
    assert "check digit" not in text_of(response.text)


@pytest.mark.parametrize("case", ["wrong_digits", "unknown_pinfl", "no_document"])
def test_a_failed_second_factor_reads_the_same_and_is_counted(client, store, seeded, case,
                                                            actor_for):
    person = dict(seeded["patients"][0])
    digits = "0000" if case == "wrong_digits" else person["document"][-4:]
    if case == "unknown_pinfl":
        person["pinfl"] = make_pinfl(date(1990, 1, 1), "male",
                                     district="999", serial="999")
    if case == "no_document":
        created = patients.register_patient(
            store, actor_for("registrar"), full_name="Hujjatsiz Bemor", phone="+998901112233",
            facility_id=seeded["facility_id"], pinfl=make_pinfl(
                date(1970, 2, 3), "female", district="111"))
        person["pinfl"] = store.one("SELECT pinfl FROM patients WHERE patient_id = ?",
                                    (created["patient_id"],))["pinfl"]
        digits = "1234"
    client.get("/ui/kiosk/identify?lang=ru")
    post(client, "/ui/kiosk/identify", {"pinfl": person["pinfl"]})
    before = event_count(store)
    response = post(client, "/ui/kiosk/verify", {"document_digits": digits})
    assert response.status_code == 401
    message = translated("ru", kiosk_identity._not_confirmed().message)
    assert escaped(message) in response.text
    assert _failures(store) == 2  # one for the kiosk, one for the PINFL
    assert event_count(store) == before
    with client.session_transaction() as session:
        assert kiosk_session.PATIENT not in session


def test_pinfl_attempts_are_throttled_even_with_the_right_digits_after(client, store, seeded):
    person = seeded["patients"][0]
    client.get("/ui/kiosk/identify?lang=uz")
    post(client, "/ui/kiosk/identify", {"pinfl": person["pinfl"]})
    for _ in range(kiosk_identity.MAX_FAILURES_PER_PINFL):
        post(client, "/ui/kiosk/verify", {"document_digits": "0000"})
    response = post(client, "/ui/kiosk/verify", {"document_digits": person["document"][-4:]})
    assert response.status_code == 429
    assert escaped(translated("uz", "Too many wrong attempts for this PINFL; please ask at the"
                                    " registry desk")) in response.text
    with client.session_transaction() as session:
        assert kiosk_session.PATIENT not in session


def test_a_kiosk_is_throttled_across_pinfls(client, store, seeded):
    client.get("/ui/kiosk/identify")
    for i in range(kiosk_identity.MAX_FAILURES_PER_KIOSK):
        pinfl = make_pinfl(date(1980, 1, 1) + timedelta(days=i), "male", district="555")
        post(client, "/ui/kiosk/identify", {"pinfl": pinfl})
        post(client, "/ui/kiosk/verify", {"document_digits": "0000"})
    response = post(client, "/ui/kiosk/identify", {"pinfl": seeded["patients"][1]["pinfl"]})
    assert response.status_code == 429 and "data-error" in response.text


def test_a_taken_slot_shows_the_conflict_and_books_nothing(client, store, me, actor_for):
    other = store.one("SELECT patient_id FROM patients WHERE patient_id != ?",
                      (me["patient"]["patient_id"],))["patient_id"]
    appointments.book(store, actor_for("registrar"), patient_id=other,
                      practitioner_id=me["doctor_id"], starts_at=me["slot"],
                      channel="registry", now=me["now"])
    client.get("/ui/kiosk/home?lang=ru")
    before = event_count(store)
    response = post(client, f"/ui/kiosk/book/{me['doctor_id']}",
                    {"starts_at": me["slot"], "confirm": "1"})
    assert response.status_code == 409
    assert escaped(translated("ru", "This time is already booked; choose another")) in \
        response.text
    assert event_count(store) == before


def test_check_in_on_another_day_is_refused_with_a_message(client, store, me, actor_for):
    tomorrow = store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? AND"
                         " starts_at > ? ORDER BY starts_at LIMIT 1 OFFSET 40",
                         (me["doctor_id"], me["slot"]))["starts_at"]
    appointment_id = appointments.book(store, actor_for("registrar"),
                                       patient_id=me["patient"]["patient_id"],
                                       practitioner_id=me["doctor_id"], starts_at=tomorrow,
                                       channel="registry", now=me["now"])
    client.get("/ui/kiosk/home?lang=uz")
    before = event_count(store)
    response = post(client, f"/ui/kiosk/appointments/{appointment_id}/check-in")
    assert response.status_code == 422
    assert escaped(translated("uz", "Check-in is only possible on the day of the visit")) in \
        response.text
    assert event_count(store) == before


def test_moving_to_a_past_time_is_refused(client, store, me, actor_for):
    appointment_id = appointments.book(store, actor_for("registrar"),
                                       patient_id=me["patient"]["patient_id"],
                                       practitioner_id=me["doctor_id"], starts_at=me["slot"],
                                       channel="registry", now=me["now"])
    # the latest published slot before the pinned clock (slots between it and the booked one,
    # an hour later, are still to come)
    past = store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at < ?"
                     " ORDER BY starts_at DESC LIMIT 1", (me["doctor_id"], to_instant(me["now"])))
    if past is None:  # the pinned clock precedes the schedule: an unpublished time is refused too
        target, msgid = "2020-01-01T05:00:00Z", "The doctor has no slot at this time"
    else:
        target, msgid = past["starts_at"], "This time has already passed; choose a later one"
    client.get("/ui/kiosk/home?lang=ru")
    before = event_count(store)
    response = post(client, f"/ui/kiosk/appointments/{appointment_id}/move",
                    {"starts_at": target, "confirm": "1"})
    assert response.status_code in (404, 422)
    assert escaped(translated("ru", msgid)) in response.text
    assert event_count(store) == before


# -- the idle rule ---------------------------------------------------------------------------

def test_an_idle_session_is_ended_by_the_server(client, me):
    with client.session_transaction() as session:
        session[kiosk_session.SEEN] = time.time() - client.application.config[
            "KIOSK_IDLE_SECONDS"] - 1
    response = client.get("/ui/kiosk/home")
    assert response.status_code == 302 and "ended=1" in response.headers["Location"]
    with client.session_transaction() as session:
        assert kiosk_session.PATIENT not in session
    again = client.get("/ui/kiosk/home")
    assert again.status_code == 302 and "ended" not in again.headers["Location"]
    start = client.get("/ui/kiosk/?ended=1")
    assert "data-ended" in start.text and "Rahimov" not in start.text


def test_finishing_clears_the_session_and_the_language(client, me):
    client.get("/ui/kiosk/home?lang=ru")
    response = post(client, "/ui/kiosk/end")
    assert response.status_code == 302
    assert "lang=;" in response.headers.get("Set-Cookie", "") or \
        "lang=" in ";".join(response.headers.getlist("Set-Cookie"))
    with client.session_transaction() as session:
        assert dict(session) == {}
    assert client.get("/ui/kiosk/home").status_code == 302


def test_pages_carry_the_idle_timer_only_in_a_session(client, me):
    app = client.application
    app.config["KIOSK_IDLE_SECONDS"] = 7
    assert 'data-idle-seconds="7"' in client.get("/ui/kiosk/home").text
    post(client, "/ui/kiosk/end")
    assert "data-idle-seconds" not in client.get("/ui/kiosk/").text


# -- the SMS alternative ---------------------------------------------------------------------

def _last_code(store) -> str:
    return re.search(r"\b(\d{6})\b", sms.outbox(store, limit=1)[0]["body"]).group(1)


def test_sms_code_signs_in_when_the_phone_is_confirmed(client, store, seeded, actor_for):
    person = seeded["patient_rows"][0]
    # A fresh code: the seeded template's code is made once per run and expires mid-suite.
    patients.resend_code(store, actor_for("registrar"), person["patient_id"])
    patients.confirm_phone(store, person["patient_id"], _last_code(store))
    client.get("/ui/kiosk/identify")
    post(client, "/ui/kiosk/identify", {"pinfl": person["pinfl"]})
    assert "Send me an SMS code instead" in client.get("/ui/kiosk/verify?lang=en").text
    post(client, "/ui/kiosk/sms/start")
    wrong = post(client, "/ui/kiosk/sms", {"sms_code": "000000"})
    assert wrong.status_code == 401
    right = post(client, "/ui/kiosk/sms", {"sms_code": _last_code(store)})
    assert right.headers["Location"].endswith("/ui/kiosk/home")


def test_sms_is_not_offered_while_texts_fail(client, store, seeded):
    with store.transaction() as tx:
        tx.conn.execute("UPDATE sms_outbox SET last_error = 'gateway unreachable'")
    client.get("/ui/kiosk/identify")
    post(client, "/ui/kiosk/identify", {"pinfl": seeded["patients"][0]["pinfl"]})
    assert "sms/start" not in client.get("/ui/kiosk/verify").text

# -- the patient's prescriptions ------------------------------------------------------------
# -- the patient's prescriptions ---------------------------------------------------------------

def test_prescriptions_that_cannot_be_read_leave_a_message_not_an_error_page(
        client, me, monkeypatch):
    def broken(*_args, **_kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(prescribing, "patient_prescriptions", broken)
    home = client.get("/ui/kiosk/home")
    assert home.status_code == 200 and 'data-hook="prescriptions"' in home.text
    assert "Prescriptions cannot be shown right now" in home.text


def test_prescriptions_show_with_their_qr_code(client, store, me, actor_for,
                                               clinic_credentials):
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials, patient_id=me["patient"]["patient_id"],
        items=[{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
                "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}])
    home = client.get("/ui/kiosk/home").text
    assert 'data-hook="prescriptions"' in home and issued["number"] in home
    page = client.get(f"/ui/kiosk/prescriptions/{issued['prescription_id']}")
    assert page.status_code == 200 and "<svg" in page.text and "data-print" in page.text
    assert "amoxicillin" in page.text
    other = client.get("/ui/kiosk/prescriptions/01J0000000000000000000NONE")
    assert other.status_code == 404


def test_another_patients_prescription_is_as_unknown_as_any(client, store, seeded, me,
                                                            actor_for, clinic_credentials):
    other = next(p for p in seeded["patient_rows"]
                 if p["patient_id"] != me["patient"]["patient_id"] and p["pinfl"])
    issued = prescribing.issue_prescription(
        store, actor_for("doctor"), clinic_credentials, patient_id=other["patient_id"],
        items=[{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
                "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}])
    page = client.get(f"/ui/kiosk/prescriptions/{issued['prescription_id']}")
    assert page.status_code == 404 and issued["number"] not in page.text
