"""Confirmations and the missing visit actions (issue 12, point 6): a tapped kiosk time is
booked only once confirmed; the kiosk's visit page offers Move and Cancel; the desk cancels
only after confirming with a reason, moves a visit, and prints its booking slip."""

from __future__ import annotations

import json

import pytest
from helpers.ui import escaped, event_count, kiosk_sign_in, post, staff_sign_in, translated

from edge_node.services import appointments

pytestmark = pytest.mark.usefixtures("catalogues")


def later_slot(store, doctor_id, after):
    return store.one("SELECT starts_at FROM slots WHERE practitioner_id = ? AND starts_at > ?"
                     " ORDER BY starts_at LIMIT 1", (doctor_id, after))["starts_at"]


@pytest.fixture
def booked(store, pinned, actor_for):  # noqa: F811
    return appointments.book(store, actor_for("registrar"),
                             patient_id=pinned["patient"]["patient_id"],
                             practitioner_id=pinned["doctor_id"], starts_at=pinned["slot"],
                             channel="registry", now=pinned["now"])


def status(store, appointment_id):
    return store.one("SELECT status, starts_at, cancel_reason FROM appointments WHERE"
                     " appointment_id = ?", (appointment_id,))


def test_a_tapped_kiosk_time_asks_to_confirm_before_booking(client, store, pinned):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    url = f"/ui/kiosk/book/{pinned['doctor_id']}"
    before = event_count(store)
    asked = post(client, f"{url}?lang=ru", {"starts_at": pinned["slot"]})
    assert asked.status_code == 200 and "data-confirm-slot" in asked.text
    assert escaped(translated("ru", "Book this time?")) in asked.text
    assert f'name="starts_at" value="{pinned["slot"]}"' in asked.text
    assert event_count(store) == before  # nothing booked by the tap
    done = post(client, url, {"starts_at": pinned["slot"], "confirm": "1"})
    assert done.status_code == 302 and "done=booked" in done.headers["Location"]
    assert event_count(store) == before + 1


def test_a_garbled_time_is_refused_at_the_confirm_step(client, store, pinned):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    response = post(client, f"/ui/kiosk/book/{pinned['doctor_id']}", {"starts_at": "soon"})
    assert response.status_code == 422 and "data-confirm-slot" not in response.text


def test_the_kiosk_visit_page_offers_move_and_cancel(client, store, pinned, booked):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    page = client.get(f"/ui/kiosk/appointments/{booked}").text
    assert f'href="/ui/kiosk/appointments/{booked}/move" data-move' in page
    assert f'href="/ui/kiosk/appointments/{booked}/cancel" data-cancel' in page
    later = later_slot(store, pinned["doctor_id"], pinned["slot"])
    asked = post(client, f"/ui/kiosk/appointments/{booked}/move", {"starts_at": later})
    assert "data-confirm-slot" in asked.text and status(store, booked)["starts_at"] != later
    post(client, f"/ui/kiosk/appointments/{booked}/move", {"starts_at": later, "confirm": "1"})
    assert status(store, booked)["starts_at"] == later


def test_desk_cancel_confirms_and_needs_a_reason(client, store, pinned, booked):  # noqa: F811
    staff_sign_in(client, "registrar")
    patient_page = client.get(f"/ui/desk/patients/{pinned['patient']['patient_id']}").text
    assert f"/ui/desk/appointments/{booked}/cancel?next=" in patient_page
    assert f'action="/ui/desk/appointments/{booked}/cancel"' not in patient_page  # no 1-click
    confirm = client.get(f"/ui/desk/appointments/{booked}/cancel?lang=uz")
    assert confirm.status_code == 200 and 'name="reason"' in confirm.text
    before = event_count(store)
    refused = post(client, f"/ui/desk/appointments/{booked}/cancel", {"reason": "  "})
    assert refused.status_code == 422
    expected = translated("uz", "Say why the visit is cancelled")
    assert expected != "Say why the visit is cancelled" and escaped(expected) in refused.text
    assert event_count(store) == before and status(store, booked)["status"] == "booked"
    done = post(client, f"/ui/desk/appointments/{booked}/cancel",
                {"reason": "the patient is in hospital", "next": "/ui/desk/queue"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/ui/desk/queue")
    row = status(store, booked)
    assert (row["status"], row["cancel_reason"]) == ("cancelled", "the patient is in hospital")


def test_desk_moves_a_visit_and_prints_its_slip(client, store, pinned, booked):  # noqa: F811
    staff_sign_in(client, "registrar")
    patient_page = client.get(f"/ui/desk/patients/{pinned['patient']['patient_id']}").text
    assert f'href="/ui/desk/appointments/{booked}/move" data-move' in patient_page
    assert f'href="/ui/desk/appointments/{booked}/slip" data-slip' in patient_page
    later = later_slot(store, pinned["doctor_id"], pinned["slot"])
    slots = client.get(f"/ui/desk/appointments/{booked}/move").text
    assert f'value="{later}"' in slots
    moved = post(client, f"/ui/desk/appointments/{booked}/move", {"starts_at": later})
    assert moved.status_code == 302 and status(store, booked)["starts_at"] == later
    event = store.one("SELECT payload FROM events WHERE type = 'AppointmentRescheduled'")
    assert json.loads(event["payload"])["starts_at"] == later
    slip = client.get(f"/ui/desk/appointments/{booked}/slip").text
    assert "data-slip" in slip and "data-print" in slip
    assert pinned["patient"]["full_name"] in slip
