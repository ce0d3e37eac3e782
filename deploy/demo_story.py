"""The demo's working day: what a person finds when they open the screens of `make demo`.

Each step acts through the services (at the clinic) or the hub's HTTP API (the regional
office and the 1003 call centre), exactly as the real people would:

* a queue at the clinic today: patients booked with their family doctor and checked in;
* one signed e-prescription, for the pharmacies to scan and dispense;
* a numbered paper pad allocated to the clinic by the regional office (for outages);
* one call-centre request from a bedridden patient, waiting for the family doctor.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

import requests

from edge_node.seed import DEMO_PIN
from edge_node.services import appointments, patients, prescribing, scheduling, staff
from edge_node.services.access import SYSTEM
from edge_node.store import NodeStore
from sync_protocol.timeutil import TASHKENT, from_instant, local_date, utc_now

log = logging.getLogger(__name__)

QUEUE_CHECKED_IN = 3  # patients already waiting in the queue; one more is booked, not yet here
EARLY = timedelta(hours=1)  # a morning booking is made an hour before its slot
PAD = {"series": "TAS", "first_serial": 100, "last_serial": 149,
       "allocated_by": "Toshkent shahar sog'liqni saqlash bosh boshqarmasi"}
CALL_CENTRE_REQUEST = {
    "request_text": "Yotoq bemor, uydan chiqa olmaydi: metformin 850 mg retseptini uzaytirish"
                    " kerak (qizi qo'ng'iroq qildi).",
    "requested_by": "1003 operatori Karimova Dilnoza",
}
PRESCRIPTION_ITEM = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg",
                     "quantity": 20, "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}
HTTP_TIMEOUT = 10


def _actor(store: NodeStore, username: str):
    """Sign in as the demo account, as the person would at the desk."""
    role = {"doctor2": "doctor"}.get(username, username)
    return staff.actor_for_token(store, staff.sign_in(store, username, DEMO_PIN[role])["token"])


def todays_queue(store: NodeStore, demo_patients: list[dict]) -> dict[str, Any]:
    """Book the demo patients today with their family doctors and check all but the last in.

    Bookings take today's first free slots. On a day the clinic is closed (Sunday) the family
    doctors get a duty schedule for today, so a queue exists whatever day the demo runs; on a
    public holiday no slot can be published and the queue is left empty (said on the console).
    """
    registrar = _actor(store, "registrar")
    today = local_date(utc_now())
    rows = [patients.find_patient(store, registrar, pinfl=p["pinfl"]) for p in demo_patients]
    for doctor in {r["family_doctor_id"] for r in rows}:
        scheduling.publish_schedule(store, SYSTEM, practitioner_id=doctor, first_day=today,
                                    days=1, start=time(8, 0), end=time(20, 0),
                                    weekdays=tuple(range(7)))
    start_of_day = datetime.combine(today, time(0), tzinfo=TASHKENT)
    queue = []
    for index, row in enumerate(rows):
        free = scheduling.free_slots(store, row["family_doctor_id"], day=today,
                                     after=start_of_day, limit=1)
        if not free:
            log.warning("no slot today for the demo queue (a public holiday?)")
            break
        booked_at = from_instant(free[0]["starts_at"]) - EARLY
        appointment = appointments.book(store, registrar, patient_id=row["patient_id"],
                                        practitioner_id=row["family_doctor_id"],
                                        starts_at=free[0]["starts_at"], channel="registry",
                                        now=booked_at)
        number = None
        if index < QUEUE_CHECKED_IN:
            number = appointments.check_in(store, registrar, appointment, now=booked_at)
        queue.append({"appointment_id": appointment, "queue_number": number})
    return {"day": today.isoformat(), "queue": queue}


def prescribe(store: NodeStore, credentials: Any, patient: dict) -> dict:
    """One e-prescription from the first doctor, for the pharmacies to scan."""
    doctor = _actor(store, "doctor")
    row = patients.find_patient(store, doctor, pinfl=patient["pinfl"])
    return prescribing.issue_prescription(store, doctor, credentials,
                                          patient_id=row["patient_id"],
                                          items=[PRESCRIPTION_ITEM])


def allocate_pad(hub_url: str, facility_id: str) -> dict:
    """The regional office gives the clinic a numbered pad of paper prescriptions."""
    response = requests.post(f"{hub_url}/api/v1/paper/pads",
                             json={**PAD, "facility_id": facility_id}, timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.json()


def call_centre_request(hub_url: str, patient: dict) -> dict:
    """The 1003 call centre records a bedridden patient's request for their family doctor."""
    response = requests.post(f"{hub_url}/api/v1/remote-requests",
                             json={**CALL_CENTRE_REQUEST, "pinfl": patient["pinfl"]},
                             timeout=HTTP_TIMEOUT)
    response.raise_for_status()
    return response.json()
