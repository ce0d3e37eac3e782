"""A whole day without the hub, over real HTTP: the clinic writes paper, the pharmacy
dispenses from paper and from e-prescriptions offline; after entry and sync the hub's
reconciliation report lists exactly the expected matches and mismatches, and nothing is lost.

The paper is dated the morning of the outage day (it is entered afterwards, so its times are
in the past); the nodes sync, fail and sync again at the real time of the test.
"""

from datetime import UTC, datetime, time, timedelta

from central_hub import reconciliation
from edge_node.services import prescribing, staff
from sync_protocol.timeutil import TASHKENT, local_date, to_instant, utc_now

AMOXICILLIN = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
               "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}
AMLODIPINE = {"inn": "amlodipine", "form": "tablet", "strength": "5 mg", "quantity": 30,
              "dosage": "1 tabletka kuniga 1 mahal"}


def outage_morning() -> datetime:
    """09:00 in Tashkent on the latest day whose 09:00-12:00 is at least an hour past."""
    now = datetime.now(TASHKENT)
    day = now.date() if now.time() >= time(13) else now.date() - timedelta(days=1)
    return datetime.combine(day, time(9), TASHKENT).astimezone(UTC)


def line(drug: dict, quantity: int) -> dict:
    return {"inn": drug["inn"], "form": drug["form"], "strength": drug["strength"],
            "quantity": quantity, "product": f"{drug['inn'].title()} Pharm", "batch": "B-7",
            "expiry": "2030-06-30"}


def test_a_whole_day_on_paper_reconciles(network):
    clinic, pharmacy, morning = network.clinic, network.pharmacy, outage_morning()

    def at(minutes: int) -> str:
        return to_instant(morning + timedelta(minutes=minutes))

    patients = [dict(r) for r in clinic.store.query("SELECT * FROM patients ORDER BY "
                                                    "birth_date")]
    doctor = staff.actor_for_staff(clinic.store.one("SELECT * FROM staff WHERE username = "
                                                    "'doctor'"))
    # -- the day before: a pad for the clinic, two e-prescriptions, everyone in sync --------
    clinic.sync()  # the hub learns the facility
    network.hub_post("/api/v1/paper/pads", {
        "facility_id": clinic.facility_id, "series": "TAS", "first_serial": 100,
        "last_serial": 149, "allocated_by": "Toshkent shahar SSB"})
    e1, e2 = (prescribing.issue_prescription(
        clinic.store, doctor, clinic.app.extensions["dmed_credentials"],
        patient_id=patients[i]["patient_id"], items=[AMOXICILLIN],
        now=morning - timedelta(hours=1)) for i in (0, 1))
    for node in (clinic, pharmacy, clinic):
        node.sync()
    assert [p["first_serial"] for p in clinic.get("/api/v1/paper/pads", as_="doctor")[
        "pads"]] == [100]

    # -- the outage ---------------------------------------------------------------------------
    for node in (clinic, pharmacy):
        node.go_offline()
        assert node.sync()["ok"] is False
    # The pharmacy's node is up again in the afternoon: an e-prescription at the counter.
    verdict = pharmacy.post("/api/v1/pharmacy/verify", json={"code": e2["qr"]},
                            as_="pharmacist")
    assert verdict["verdict"] == "valid"
    pharmacy.post("/api/v1/pharmacy/dispense", as_="pharmacist", expect=201, json={
        "prescription_id": e2["prescription_id"], "item_no": 1, "quantity": 20,
        "product": "Amoksil", "batch": "B-7", "expiry": "2030-06-30"})
    # After the outage (the hub still unreachable): the clinic enters its paper...
    doctor_id = doctor.practitioner_id
    written = {}
    for serial, minutes, patient, item in (("TAS-000101", 30, 2, AMOXICILLIN),
                                           ("TAS-000102", 40, 0, AMLODIPINE),
                                           ("TAS-000150", 50, 1, AMOXICILLIN)):
        written[serial] = clinic.post("/api/v1/paper/prescriptions", as_="doctor", expect=201,
                                      json={"paper_serial": serial, "items": [item],
                                            "patient_id": patients[patient]["patient_id"],
                                            "practitioner_id": doctor_id,
                                            "paper_reason": "outage", "issued_at": at(minutes)})
    assert written["TAS-000150"]["warnings"] == ["serial_not_held"]  # not in the pad
    # ...and the pharmacy its paper dispense log of the morning.
    logged = {}
    for key, minutes, names, patient, items in (
            ("paper", 60, {"paper_serial": "TAS-000101"}, 2, [line(AMOXICILLIN, 20)]),
            ("by_number", 75, {"prescription_number": e1["number"]}, 0,
             [line(AMOXICILLIN, 20)]),
            ("too_much", 90, {"paper_serial": "TAS-000102"}, 0, [line(AMLODIPINE, 40)]),
            ("lost_paper", 105, {"paper_serial": "TAS-000140"}, 3, [line(AMOXICILLIN, 10)])):
        logged[key] = pharmacy.post("/api/v1/paper/dispenses", as_="pharmacist", expect=201,
                                    json={**names, "items": items, "paper_reason": "outage",
                                          "dispensed_at": at(minutes),
                                          "patient_document": patients[patient]["document"]})
    logged = {k: v["dispense_id"] for k, v in logged.items()}

    # -- back online: the pharmacy first (its dispenses reach the hub before the paper) -----
    for node in (clinic, pharmacy):
        node.go_online()
    for node in (pharmacy, clinic, pharmacy, clinic):
        node.sync()

    # Nothing is lost: every event each node wrote is at the hub, once.
    with network.hub_storage.reader() as tx:
        for node in (clinic, pharmacy):
            held = [r["id"] for r in tx.query("SELECT id FROM events WHERE origin = ? ORDER BY "
                                              "seq", (node.store.node_id,))]
            assert held == node.own_events(), node.name
        assert tx.scalar("SELECT COUNT(*) AS n FROM quarantine") == 0
        assert tx.scalar("SELECT COUNT(*) AS n FROM events WHERE type = 'MedicationDispensed'"
                         ) == 1

    day = local_date(morning).isoformat()
    rx_id = {serial: w["prescription_id"] for serial, w in written.items()}
    clinic_day = network.hub_get(f"/api/v1/reconciliation?facility={clinic.facility_id}"
                                 f"&day={day}")
    assert [(p["paper_serial"], p["status"]) for p in clinic_day["paper_prescriptions"]] == [
        ("TAS-000101", "matched"), ("TAS-000102", "matched"), ("TAS-000150", "unmatched")]
    assert sorted((m["reason"], m["subject_id"]) for m in clinic_day["mismatches"]) == [
        ("quantity_above_prescribed", f"{rx_id['TAS-000102']}:amlodipine"),
        ("serial_not_allocated", "TAS-000150")]

    pharmacy_day = network.hub_get(f"/api/v1/reconciliation?facility={pharmacy.facility_id}"
                                   f"&day={day}")
    assert sorted((m["dispense_id"], m["prescription_id"], m["matched_by"])
                  for m in pharmacy_day["matches"]) == sorted([
        (logged["paper"], rx_id["TAS-000101"], "serial"),
        (logged["by_number"], e1["prescription_id"], "id"),  # the node knew the number
        (logged["too_much"], rx_id["TAS-000102"], "serial")])
    assert [(d["dispense_id"], d["status"]) for d in pharmacy_day["paper_dispenses"]] == [
        (logged["paper"], "matched"), (logged["by_number"], "matched"),
        (logged["too_much"], "matched"), (logged["lost_paper"], "unmatched")]
    assert [m["reason"] for m in pharmacy_day["mismatches"]] == ["quantity_above_prescribed"]

    # The mismatches reach the nodes involved.
    def conflicts(node):
        return sorted(r["subject_id"] for r in node.store.query("SELECT subject_id FROM "
                                                                "conflicts"))
    assert conflicts(clinic) == sorted([f"{rx_id['TAS-000102']}:amlodipine", "TAS-000150"])
    assert conflicts(pharmacy) == [f"{rx_id['TAS-000102']}:amlodipine"]

    # A week on, the dispense from the lost paper has still matched nothing.
    [late] = reconciliation.reconcile_overdue(network.hub_storage, utc_now() + timedelta(days=8))
    pharmacy_day = network.hub_get(f"/api/v1/reconciliation?facility={pharmacy.facility_id}"
                                   f"&day={day}")
    assert [(m["conflict_id"], m["reason"], m["subject_id"]) for m in pharmacy_day[
        "mismatches"] if m["reason"] == "never_matched"] == [(late, "never_matched",
                                                              "TAS-000140")]
