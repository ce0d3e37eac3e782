"""Demo data: a Tashkent polyclinic, its doctors with a week of slots, staff and patients."""

from __future__ import annotations

import logging
from datetime import date, time

from sync_protocol.identifiers import make_pinfl
from sync_protocol.timeutil import local_date, utc_now

from .services import facilities, patients, scheduling, staff
from .services.access import SYSTEM
from .store import NodeStore

log = logging.getLogger(__name__)

DEMO_PIN = {"admin": "9000", "registrar": "1111", "doctor": "2222", "pharmacist": "3333"}

DOCTORS = (
    ("Aliyeva Dilnoza Rustamovna", "family_medicine", True),
    ("Karimov Jasur Bahodirovich", "family_medicine", True),
    ("Tursunov Sherzod Akmalovich", "cardiology", False),
    ("Yusupova Malika Farxodovna", "paediatrics", False),
)
PATIENTS = (
    ("Rahimov Bobur Anvarovich", date(1985, 3, 14), "male", "+998901234567", "AA1234567"),
    ("Nazarova Gulnora Ilhomovna", date(1992, 11, 2), "female", "+998935551122", "AB7654321"),
    ("Ismoilov Otabek Shuhratovich", date(1958, 7, 30), "male", "+998977003344", "AC1112223"),
    ("Qodirova Zarina Akbarovna", date(2016, 5, 9), "female", "+998712345678", "AD9876543"),
)


def seed_demo(store: NodeStore, *, code: str = "TAS-POL-012", kind: str = "clinic",
              region: str = "TAS", days: int = 7, pharmacist: bool = True) -> dict:
    """Create the demo facility and everything in it; returns what a person needs to sign in.

    ``pharmacist``: a counter account on the clinic itself, for a stand-alone node; beside a
    hub, dispensing belongs to pharmacy nodes (the hub refuses a clinic's dispenses).
    """
    # A node enrolled with its provisioned facility seeds into that facility.
    facility_id = store.state("facility_id") or facilities.register_facility(
        store, SYSTEM, code=code, name="Toshkent shahar 12-son oilaviy poliklinikasi",
        kind=kind, region=region, address="Toshkent sh., Chilonzor tumani, Bunyodkor ko'ch. 12")
    with store.transaction() as tx:
        store.set_state(tx.conn, "facility_id", facility_id)
    doctor_ids = []
    for name, specialty, family in DOCTORS:
        pid = facilities.register_practitioner(store, SYSTEM, facility_id=facility_id,
                                               full_name=name, specialty=specialty,
                                               is_family_doctor=family)
        scheduling.publish_schedule(store, SYSTEM, practitioner_id=pid,
                                    first_day=local_date(utc_now()), days=days,
                                    start=time(8, 0), end=time(17, 0), slot_minutes=20)
        doctor_ids.append(pid)
    accounts = [("admin", "Administrator", "admin", None),
                ("registrar", "Registratura", "registrar", None),
                ("doctor", DOCTORS[0][0], "doctor", doctor_ids[0]),
                ("doctor2", DOCTORS[2][0], "doctor", doctor_ids[2])]
    if pharmacist:
        accounts.append(("pharmacist", "Dorixona", "pharmacist", None))
    for username, full_name, role, practitioner in accounts:
        staff.create_staff(store, SYSTEM, username=username, full_name=full_name, role=role,
                           pin=DEMO_PIN[role], practitioner_id=practitioner)
    registrar = staff.actor_for_staff(store.one("SELECT * FROM staff WHERE username = ?",
                                                ("registrar",)))
    demo_patients = []
    for index, (name, born, sex, phone, document) in enumerate(PATIENTS):
        pinfl = make_pinfl(born, sex, district="261", serial=f"{101 + index:03d}")
        patients.register_patient(store, registrar, full_name=name, phone=phone,
                                  facility_id=facility_id, pinfl=pinfl, document=document,
                                  family_doctor_id=doctor_ids[index % 2])
        demo_patients.append({"full_name": name, "pinfl": pinfl, "document": document})
    log.info("seeded demo facility %s", code)
    return {"facility_id": facility_id, "sign_ins": [
        {"username": u, "pin": DEMO_PIN[r], "role": r} for u, _n, r, _p in accounts],
        "patients": demo_patients}


def seed_pharmacy(store: NodeStore, *, code: str = "TAS-APT-007", region: str = "TAS",
                  name: str = "7-son dorixona",
                  address: str = "Toshkent sh., Chilonzor tumani, Qatortol ko'ch. 3") -> dict:
    """A demo pharmacy: its facility and its staff (it learns patients and prescriptions by
    sync, or from the codes it scans)."""
    facility_id = store.state("facility_id") or facilities.register_facility(
        store, SYSTEM, code=code, name=name, kind="pharmacy", region=region, address=address)
    with store.transaction() as tx:
        store.set_state(tx.conn, "facility_id", facility_id)
    accounts = [("admin", "Administrator", "admin"), ("pharmacist", "Dorixona", "pharmacist")]
    for username, full_name, role in accounts:
        staff.create_staff(store, SYSTEM, username=username, full_name=full_name, role=role,
                           pin=DEMO_PIN[role])
    return {"facility_id": facility_id, "sign_ins": [
        {"username": u, "pin": DEMO_PIN[r], "role": r} for u, _n, r in accounts]}
