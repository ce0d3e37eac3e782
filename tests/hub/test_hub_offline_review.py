"""Offline dispenses are listed for review at the hub (issue 13.3), whether or not they raised
a conflict; dispenses made under a claim are not. Both backends."""

import re

import pytest
from helpers.hub import SimNode, instant
from helpers.hub_app import signed_in

from central_hub import claims
from sync_protocol.identifiers import new_ulid


@pytest.fixture
def app(make_hub, central_staff):
    return make_hub()


def dispense(node: SimNode, rx: str, mode: str, quantity: int = 20) -> str:
    dispense_id = new_ulid()
    payload = {"dispense_id": dispense_id, "prescription_id": rx, "item_no": 1,
               "quantity": quantity, "product": "Amoksil", "batch": "B-1",
               "expiry": "2030-01-31", "dispensed_at": instant(), "mode": mode,
               "facility_id": node.facility_id}
    if mode == "online_claimed":
        payload["claim_id"] = new_ulid()
    node.emit("MedicationDispensed", payload)
    return dispense_id


def test_offline_dispenses_are_listed_with_their_conflicts(app, world, storage):
    clinic = SimNode(world.pki.clinic, app.test_client())
    pharmacy = SimNode(world.pki.pharmacy, app.test_client())
    clinic.register_facility()
    pharmacy.register_facility(name="Dorixona Shifo")
    patient, doctor = clinic.register_patient(), clinic.register_practitioner()
    rx, other = clinic.prescribe(patient, doctor), clinic.prescribe(patient, doctor)
    online = dispense(pharmacy, rx, "online_claimed", 15)
    excess = dispense(pharmacy, rx, "offline", 10)
    quiet = dispense(pharmacy, other, "offline", 10)
    assert clinic.push().status_code == 200 and pharmacy.push().status_code == 200
    listed = claims.offline_dispenses(storage)
    assert {d["dispense_id"] for d in listed} == {quiet, excess}
    by_id = {d["dispense_id"]: d for d in listed}
    assert by_id[quiet]["facility_name"] == "Dorixona Shifo"
    assert [c["kind"] for c in by_id[excess]["conflicts"]] == ["over_dispensing"]
    client = signed_in(app, lang="en")
    html = client.get("/dashboard/offline-dispenses?lang=en").get_data(as_text=True)
    rows = dict(re.findall(r'id="offline-(\w+)">(.*?)</tr>', html, re.S))
    assert set(rows) == {quiet, excess} and online not in html
    assert "Over-dispensing" in rows[excess] and "None" in rows[quiet]
    assert "Dorixona Shifo" in rows[quiet]
    overview = client.get("/dashboard?lang=ru").get_data(as_text=True)
    assert "Выдачи без связи с сервером (на проверку)" in overview


def test_the_review_page_needs_a_signed_in_staff_member(app):
    response = app.test_client().get("/dashboard/offline-dispenses")
    assert response.status_code == 302 and "/staff/sign-in" in response.headers["Location"]
