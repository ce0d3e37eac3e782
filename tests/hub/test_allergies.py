"""Allergies and intolerances (issue 12, point 12): recorded on the card as synced events,
projected on node and hub in any order and after a rebuild, matched against a prescription's
drugs by INN or ATC class, and overridden only with a reason kept on the prescription."""

from __future__ import annotations

import json

import pytest
from helpers.hub import SimNode  # noqa: F401 - the hub fixtures below need its module
from helpers.node import AMOXICILLIN
from helpers.ui import post, staff_sign_in  # noqa: F401
from test_hub_projections import ingest, nodes  # noqa: F401

from central_hub.allergies import rebuild_allergies
from edge_node.errors import Conflict, FieldErrors, ValidationFailed
from edge_node.services import allergies, prescribing
from sync_protocol.errors import PayloadInvalid
from sync_protocol.event_types import validate_payload
from sync_protocol.identifiers import new_ulid


@pytest.fixture
def patient(seeded):
    return seeded["patient_rows"][0]


def record(store, actor_for, patient, substance, **kw):
    return allergies.record_allergy(store, actor_for("doctor"), patient_id=patient["patient_id"],
                                    substance=substance, reaction=kw.pop("reaction", "hives"),
                                    **kw)


def last_event(store, event_type):
    row = store.one("SELECT payload FROM events WHERE type = ? ORDER BY position DESC LIMIT 1",
                    (event_type,))
    return json.loads(row["payload"]) if row else None


# -- recording -----------------------------------------------------------------------------

def test_an_inn_and_an_atc_class_are_recorded_as_events(store, seeded, actor_for, patient):
    by_inn = record(store, actor_for, patient, "Amoxicillin", severity="severe")
    by_class = record(store, actor_for, patient, "j01d", kind="intolerance", reaction="rash")
    rows = {r["allergy_id"]: r for r in store.query("SELECT * FROM allergies")}
    assert (rows[by_inn]["substance_type"], rows[by_inn]["substance"]) == ("inn", "amoxicillin")
    assert (rows[by_class]["substance_type"], rows[by_class]["substance"]) == ("atc", "J01D")
    assert last_event(store, "AllergyRecorded")["kind"] == "intolerance"


def test_bad_allergy_input_names_every_field_and_changes_nothing(store, seeded, actor_for,
                                                                 patient):
    before = store.one("SELECT COUNT(*) AS n FROM events")["n"]
    with pytest.raises(FieldErrors) as caught:
        record(store, actor_for, patient, "x", reaction="", kind="sneeze")
    assert {e.field for e in caught.value.errors} == {"substance", "reaction", "kind"}
    record(store, actor_for, patient, "amoxicillin")
    with pytest.raises(Conflict):
        record(store, actor_for, patient, "AMOXICILLIN")
    assert store.one("SELECT COUNT(*) AS n FROM events")["n"] == before + 1


def test_the_schema_refuses_a_malformed_atc_class():
    payload = {"allergy_id": new_ulid(), "patient_id": new_ulid(), "kind": "allergy",
               "substance_type": "atc", "substance": "penicillin", "reaction": "rash",
               "recorded_at": "2026-01-01T00:00:00Z"}
    with pytest.raises(PayloadInvalid):
        validate_payload("AllergyRecorded", 1, payload)
    validate_payload("AllergyRecorded", 1, {**payload, "substance": "J01C"})


# -- the prescription check ----------------------------------------------------------------

@pytest.mark.parametrize("substance", ["amoxicillin", "J01C", "J01CA04"])
def test_a_matching_drug_needs_a_reason_kept_on_the_prescription(
        store, seeded, actor_for, clinic_credentials, patient, substance):
    allergy = record(store, actor_for, patient, substance)
    doctor = actor_for("doctor")
    count = store.one("SELECT COUNT(*) AS n FROM prescriptions")["n"]
    with pytest.raises(Conflict) as caught:
        prescribing.issue_prescription(store, doctor, clinic_credentials,
                                       patient_id=patient["patient_id"], items=[AMOXICILLIN])
    assert caught.value.code == "allergy_warning" and "amoxicillin" in caught.value.text
    assert store.one("SELECT COUNT(*) AS n FROM prescriptions")["n"] == count
    prescribing.issue_prescription(store, doctor, clinic_credentials,
                                   patient_id=patient["patient_id"], items=[AMOXICILLIN],
                                   allergy_override="mild rash only; no alternative in stock")
    kept = last_event(store, "PrescriptionIssued")["allergy_override"]
    assert kept == {"allergy_ids": [allergy],
                    "reason": "mild rash only; no alternative in stock"}


def test_unrelated_or_retracted_allergies_do_not_block(store, seeded, actor_for,
                                                       clinic_credentials, patient):
    record(store, actor_for, patient, "J01D")  # cephalosporins: not amoxicillin
    wrong = record(store, actor_for, patient, "amoxicillin")
    allergies.retract_allergy(store, actor_for("doctor"), wrong, "entered for the wrong patient")
    issued = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                            patient_id=patient["patient_id"],
                                            items=[AMOXICILLIN])
    assert issued["number"]
    assert "allergy_override" not in last_event(store, "PrescriptionIssued")
    with pytest.raises(ValidationFailed):
        allergies.retract_allergy(store, actor_for("doctor"), wrong, "")


# -- projections: node rebuild, hub in any order ---------------------------------------------

def test_node_projection_is_rebuild_safe(store, seeded, actor_for, patient):
    kept = record(store, actor_for, patient, "J01C")
    gone = record(store, actor_for, patient, "ibuprofen")
    allergies.retract_allergy(store, actor_for("doctor"), gone, "not an allergy: gastritis")
    before = [dict(r) for r in store.query("SELECT * FROM allergies ORDER BY allergy_id")]
    store.rebuild_projections()
    after = [dict(r) for r in store.query("SELECT * FROM allergies ORDER BY allergy_id")]
    assert after == before
    assert {r["allergy_id"]: r["retract_reason"] for r in after} == {
        kept: None, gone: "not an allergy: gastritis"}


def allergy_rows(storage):
    with storage.reader() as tx:
        return [dict(r) for r in tx.query("SELECT allergy_id, substance, retracted_at,"
                                          " retract_reason FROM hub_allergies ORDER BY"
                                          " allergy_id")]


@pytest.mark.parametrize("retraction_first", [False, True], ids=["in-order", "retraction-first"])
def test_hub_projection_is_the_same_in_any_order_and_after_a_rebuild(storage, nodes,  # noqa: F811
                                                                     retraction_first):
    clinic, clinic2 = nodes["clinic"], nodes["clinic2"]
    setup = list(clinic.log)
    allergy = new_ulid()
    clinic.emit("AllergyRecorded", {
        "allergy_id": allergy, "patient_id": clinic.patient, "kind": "allergy",
        "substance_type": "inn", "substance": "amoxicillin", "reaction": "anaphylaxis",
        "severity": "severe", "recorded_at": "2026-01-02T08:00:00Z"})
    clinic2.emit("AllergyRetracted", {"allergy_id": allergy, "patient_id": clinic.patient,
                                      "retracted_at": "2026-01-03T08:00:00Z",
                                      "reason": "wrong patient"})
    batches = [(clinic, clinic.log[len(setup):]), (clinic2, clinic2.log)]
    ingest(storage, [(clinic, setup), *(batches[::-1] if retraction_first else batches)])
    expected = [{"allergy_id": allergy, "substance": "amoxicillin",
                 "retracted_at": "2026-01-03T08:00:00Z", "retract_reason": "wrong patient"}]
    assert allergy_rows(storage) == expected
    assert rebuild_allergies(storage) == 2
    assert allergy_rows(storage) == expected


# -- the screens: the card and the prescribing form ------------------------------------------

def open_card(client, patient):
    staff_sign_in(client, "doctor")
    post(client, f"/ui/desk/patients/{patient['patient_id']}/card", {"reason": "visit"})


@pytest.mark.usefixtures("catalogues")
def test_the_card_records_and_retracts_an_allergy(client, store, patient):
    open_card(client, patient)
    base = f"/ui/desk/patients/{patient['patient_id']}"
    post(client, f"{base}/allergies", {"substance": "J01C", "reaction": "urticaria",
                                       "kind": "allergy", "severity": "moderate"})
    card = client.get(f"{base}/card?lang=ru").text
    allergy = store.one("SELECT allergy_id FROM allergies")["allergy_id"]
    assert f'data-allergy="{allergy}"' in card and "urticaria" in card
    refused = post(client, f"{base}/allergies", {"substance": "", "reaction": ""})
    assert refused.status_code == 302
    assert store.one("SELECT COUNT(*) AS n FROM allergies")["n"] == 1
    post(client, f"{base}/allergies/{allergy}/retract", {"reason": "wrong patient"})
    assert store.one("SELECT retract_reason FROM allergies")["retract_reason"] == "wrong patient"


@pytest.mark.usefixtures("catalogues")
def test_the_prescribing_form_warns_as_the_doctor_types_and_needs_a_reason(
        client, store, actor_for, patient):
    allergy = record(store, actor_for, patient, "J01C", reaction="anaphylaxis")
    open_card(client, patient)
    url = f"/ui/desk/patients/{patient['patient_id']}/prescribe"
    typed = client.get(f"/ui/drugs?q=amoxi&patient_id={patient['patient_id']}").json
    amox = next(r for r in typed["results"] if r["inn"] == "amoxicillin")
    assert amox["allergy"] is True and amox["badges"][0]["tone"] == "bad"
    assert "anaphylaxis" in amox["badges"][0]["text"]
    row = {"rows": "1", "inn_0": "amoxicillin", "form_0": "capsule", "strength_0": "500 mg",
           "quantity_0": "20", "dosage_0": "1 x 3"}
    picked = post(client, url, {**row, "action": "update"}).text
    assert f'data-allergy-warning="{allergy}"' in picked and "data-allergy-override" in picked
    refused = post(client, url, {**row, "action": "sign"})
    assert refused.status_code == 409
    assert store.one("SELECT COUNT(*) AS n FROM prescriptions")["n"] == 0
    signed = post(client, url, {**row, "action": "sign",
                                "allergy_override": "reaction was to clavulanate, not this"})
    assert signed.status_code == 302
    kept = last_event(store, "PrescriptionIssued")["allergy_override"]
    assert kept["reason"] == "reaction was to clavulanate, not this"
