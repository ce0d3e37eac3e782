"""Paper written during an outage, entered afterwards: both times kept, nothing lost."""

from datetime import timedelta

import pytest
from helpers.node import AMOXICILLIN, RemoteNode, receive, snapshot

from edge_node.errors import Conflict, Forbidden, ValidationFailed
from edge_node.prescribing_rules import PrescriptionRuleError
from edge_node.services import paper
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import from_instant, to_instant, utc_now


def enter(store, actor_for, seeded, **kw):
    args = {"facility_id": seeded["facility_id"], "paper_serial": "TAS-000123",
            "patient_id": seeded["patient_rows"][0]["patient_id"],
            "practitioner_id": seeded["doctors"][0]["practitioner_id"], "items": [AMOXICILLIN],
            "paper_reason": "outage", "issued_at": utc_now() - timedelta(hours=5), **kw}
    return paper.enter_paper_prescription(store, actor_for("registrar"), **args)


def test_paper_prescription_keeps_both_times(store, seeded, actor_for):
    written = (utc_now() - timedelta(hours=5)).replace(microsecond=0)
    result = enter(store, actor_for, seeded, issued_at=written)
    event = store.events()[-1]
    assert event.type == "PrescriptionIssued"
    p = event.payload
    assert (p["kind"], p["paper_serial"], p["paper_reason"]) == ("paper", "TAS-000123", "outage")
    assert from_instant(p["issued_at"]) == written
    assert from_instant(p["entered_at"]) > written
    assert result["number"] == "P-TAS-000123"
    assert result["warnings"] == ["serial_not_held"]


def test_a_serial_of_a_held_pad_gives_no_warning(store, seeded, actor_for):
    hub = RemoteNode("hub")
    receive(store, [hub.event("PaperPadAllocated", {
        "pad_id": new_ulid(), "facility_id": seeded["facility_id"], "series": "TAS",
        "first_serial": 100, "last_serial": 199})])
    assert enter(store, actor_for, seeded)["warnings"] == []
    assert paper.pads(store, seeded["facility_id"])[0]["last_serial"] == 199


@pytest.mark.parametrize(("kw", "error", "field"), [
    ({"paper_serial": "123"}, ValidationFailed, "paper_serial"),
    ({"paper_reason": "lazy"}, ValidationFailed, "paper_reason"),
    ({"issued_at": "tomorrow"}, ValidationFailed, "issued_at"),
    ({"issued_at": utc_now() + timedelta(hours=2)}, ValidationFailed, "issued_at"),
    ({"issued_at": utc_now() - timedelta(days=90)}, ValidationFailed, "issued_at"),
    ({"items": [{**AMOXICILLIN, "inn": "morphine", "form": "injection",
                 "strength": "10 mg/ml"}]}, PrescriptionRuleError, "items[0].inn"),
])
def test_bad_paper_entry_changes_nothing(store, seeded, actor_for, kw, error, field):
    before = snapshot(store)
    with pytest.raises(error) as caught:
        enter(store, actor_for, seeded, **kw)
    assert caught.value.field == field
    assert snapshot(store) == before


def test_the_same_serial_twice_on_one_node_is_refused(store, seeded, actor_for):
    enter(store, actor_for, seeded)
    with pytest.raises(Conflict) as caught:
        enter(store, actor_for, seeded, paper_serial="tas 123".replace(" ", "-"))
    assert caught.value.code == "serial_entered"


def test_paper_dispense_log_entry(store, seeded, actor_for):
    line = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
            "product": "Amoksil", "batch": "A12", "expiry": "2030-01-01"}
    given = utc_now() - timedelta(hours=3)
    result = paper.enter_paper_dispense(
        store, actor_for("pharmacist"), facility_id=seeded["facility_id"], items=[line],
        paper_reason="outage", dispensed_at=given, paper_serial="TAS-000123",
        patient_document=seeded["patients"][0]["document"])
    row = store.one("SELECT * FROM paper_dispenses WHERE dispense_id = ?",
                    (result["dispense_id"],))
    assert row["paper_serial"] == "TAS-000123"
    assert row["dispensed_at"] == to_instant(given)
    with pytest.raises(ValidationFailed):
        paper.enter_paper_dispense(store, actor_for("pharmacist"),
                                   facility_id=seeded["facility_id"], items=[line],
                                   paper_reason="outage", dispensed_at=given,
                                   patient_document="AA1234567")
    with pytest.raises(Forbidden):
        paper.enter_paper_dispense(store, actor_for("registrar"),
                                   facility_id=seeded["facility_id"], items=[line],
                                   paper_reason="outage", dispensed_at=given,
                                   paper_serial="TAS-1", pinfl=seeded["patients"][0]["pinfl"])


def test_paper_entry_over_the_api(client, auth, seeded):
    response = client.post("/api/v1/paper/prescriptions", headers=auth("doctor"), json={
        "paper_serial": "TAS-000777", "patient_id": seeded["patient_rows"][1]["patient_id"],
        "practitioner_id": seeded["doctors"][0]["practitioner_id"], "items": [AMOXICILLIN],
        "paper_reason": "emergency", "issued_at": to_instant(utc_now() - timedelta(hours=1))})
    assert response.status_code == 201, response.json
    assert client.get("/api/v1/paper/pads", headers=auth("pharmacist")).status_code == 403
