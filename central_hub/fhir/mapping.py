"""Rows of the hub's projections (and of its log) as FHIR R4 resources: plain dicts.

Nothing here knows Flask or SQL: `sources` selects the rows, these functions shape them. The
mapping table (our field -> FHIR element) is in central_hub/fhir/README.md. Each function
takes one row and returns the resources it makes (a visit row makes one Condition per
diagnosis; every other row makes one resource).
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from sync_protocol import cose, drug_catalogue
from sync_protocol.event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    FACILITY_REGISTERED,
    LAB_RESULT_RECORDED,
    MEDICATION_DISPENSED,
    PRACTITIONER_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
    VISIT_RECORDED,
)
from sync_protocol.hlc import HlcTimestamp
from sync_protocol.qr import decode_transport
from sync_protocol.timeutil import from_instant, to_instant

from . import systems as s

log = logging.getLogger(__name__)

Resource = dict[str, Any]
# An appointment whose slot the hub never saw (slots published elsewhere) still needs an end
# (FHIR app-3): the node's default slot length.
DEFAULT_SLOT_MINUTES = 15


def ref(resource_type: str, resource_id: str | None, display: str | None = None) -> dict | None:
    if not resource_id:
        return None
    out = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        out["display"] = display
    return out


def payload_of(row: dict[str, Any], column: str = "payload") -> dict[str, Any]:
    """A JSON column: text on SQLite, already decoded (JSONB) on PostgreSQL."""
    value = row.get(column)
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


def meta(row: dict[str, Any]) -> dict[str, Any]:
    hlc = row.get("since")
    return {"lastUpdated": instant_of_hlc(hlc)} if hlc else {}


def instant_of_hlc(hlc: str) -> str:
    return HlcTimestamp.parse(hlc).to_datetime().isoformat(timespec="milliseconds")


def clean(value: Any) -> Any:
    """Drop empty values (FHIR forbids empty elements) recursively; one pass, scalars are
    not recursed into (this runs for every element of a million-resource export)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, dict | list):
                item = clean(item)
                if item:
                    out[key] = item
            elif item is not None and item != "":
                out[key] = item
        return out
    if isinstance(value, list):
        out_list = []
        for item in value:
            if isinstance(item, dict | list):
                item = clean(item)
                if item:
                    out_list.append(item)
            elif item is not None and item != "":
                out_list.append(item)
        return out_list
    return value


def resource(resource_type: str, resource_id: str, row: dict[str, Any], **body: Any) -> Resource:
    return clean({"resourceType": resource_type, "id": resource_id, "meta": meta(row), **body})


# -- people and places ---------------------------------------------------------------------

def patient(row: dict[str, Any]) -> list[Resource]:
    name = row.get("full_name") or ""
    family, _, given = name.partition(" ")  # Uzbek order: family name first
    identifiers = [{"use": "official", "system": s.PINFL, "value": row.get("pinfl")},
                   {"use": "secondary", "system": s.DOCUMENT, "value": row.get("document")},
                   {"use": "usual", "system": s.MED_ID, "value": row.get("med_id")}]
    phone = row.get("phone")
    return [resource(
        "Patient", row["fhir_id"], row,
        identifier=[i for i in identifiers if i["value"]],
        active=True,
        name=[{"use": "official", "text": name, "family": family,
               "given": given.split() if given else None}],
        telecom=[{"system": "phone", "value": phone, "use": "mobile"}] if phone else None,
        gender=s.GENDER.get(row.get("sex") or "", "unknown"),
        birthDate=row.get("birth_date"),
        generalPractitioner=[ref("Practitioner", row.get("family_doctor_id"))],
        managingOrganization=ref("Organization", row.get("facility_id")))]


def practitioner(row: dict[str, Any]) -> list[Resource]:
    p = payload_of(row)
    return [resource(
        "Practitioner", row["fhir_id"], row,
        identifier=[{"system": s.PRACTITIONER_ID, "value": row["fhir_id"]}],
        active=True, name=[{"text": p.get("full_name")}],
        qualification=[{"code": {"text": p.get("specialty")}}] if p.get("specialty") else None)]


def _facility_name(row: dict[str, Any]) -> str:
    return payload_of(row).get("name") or row.get("code") or row["fhir_id"]


def organization(row: dict[str, Any]) -> list[Resource]:
    code, display = s.FACILITY_TYPE.get(row.get("kind") or "", ("other", "Other"))
    return [resource(
        "Organization", row["fhir_id"], row,
        extension=[{"url": s.EXT_REGION, "valueCode": row.get("region")}],
        identifier=[{"system": s.FACILITY_CODE, "value": row.get("code")}],
        active=True,
        type=[{"coding": [{"system": s.ORGANIZATION_TYPE, "code": code}], "text": display}],
        name=_facility_name(row))]


def location(row: dict[str, Any]) -> list[Resource]:
    address = payload_of(row).get("address")
    return [resource(
        "Location", row["fhir_id"], row,
        identifier=[{"system": s.FACILITY_CODE, "value": row.get("code")}],
        status="active", mode="instance", name=_facility_name(row),
        address={"text": address} if address else None,
        managingOrganization=ref("Organization", row["fhir_id"]))]


# -- visits ---------------------------------------------------------------------------------

def appointment(row: dict[str, Any]) -> list[Resource]:
    start = row["starts_at"]
    end = row.get("ends_at") or to_instant(from_instant(start) +
                                           timedelta(minutes=DEFAULT_SLOT_MINUTES))
    status = s.APPOINTMENT_STATUS.get(row.get("status") or "", "booked")
    return [resource(
        "Appointment", row["fhir_id"], row, status=status,
        cancelationReason={"text": row.get("cancel_reason")} if row.get("cancel_reason") else None,
        start=start, end=end, created=instant_of_hlc(row["booked_hlc"])[:10],
        participant=[
            {"actor": ref("Patient", row["patient_id"]), "status": "accepted"},
            {"actor": ref("Practitioner", row["practitioner_id"]), "status": "accepted"},
            {"actor": ref("Location", row["facility_id"]), "status": "accepted"}])]


def encounter(row: dict[str, Any]) -> list[Resource]:
    p = payload_of(row)
    diagnoses = p.get("diagnoses") or []
    return [resource(
        "Encounter", row["fhir_id"], row, status="finished",
        **{"class": {"system": s.ACT_CODE, "code": "AMB", "display": "ambulatory"}},
        subject=ref("Patient", p.get("patient_id")),
        participant=[{"individual": ref("Practitioner", p.get("practitioner_id"))}],
        appointment=[ref("Appointment", p.get("appointment_id"))],
        period={"start": p.get("occurred_at")},
        reasonCode=[{"text": p["complaints"]}] if p.get("complaints") else None,
        diagnosis=[{"condition": ref("Condition", f"{row['fhir_id']}-{n}"),
                    "rank": 1 if d.get("primary") else None}
                   for n, d in enumerate(diagnoses, start=1)],
        location=[{"location": ref("Location", p.get("facility_id"))}],
        serviceProvider=ref("Organization", p.get("facility_id")))]


def conditions(row: dict[str, Any]) -> list[Resource]:
    p = payload_of(row)
    out = []
    for n, d in enumerate(p.get("diagnoses") or [], start=1):
        out.append(resource(
            "Condition", f"{row['fhir_id']}-{n}", row,
            category=[{"coding": [{"system": s.CONDITION_CATEGORY,
                                   "code": "encounter-diagnosis"}]}],
            code={"coding": [{"system": s.ICD10, "code": d["code"]}],
                  "text": d.get("description") or d["code"]},
            subject=ref("Patient", p.get("patient_id")),
            encounter=ref("Encounter", row["fhir_id"]),
            recordedDate=p.get("occurred_at"),
            recorder=ref("Practitioner", p.get("practitioner_id"))))
    return out


def _numeric(text: str) -> float | int | None:
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in text else number


def observation(row: dict[str, Any]) -> list[Resource]:
    p = payload_of(row)
    number = _numeric(p.get("value", ""))
    if number is not None:
        value: dict[str, Any] = {"valueQuantity": clean({"value": number, "unit": p.get("unit")})}
    else:
        value = {"valueString": p.get("value")}
    flag = s.FLAG.get(p.get("flag") or "")
    return [resource(
        "Observation", row["fhir_id"], row, status="final",
        category=[{"coding": [{"system": s.OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        code={"text": p.get("test")}, subject=ref("Patient", p.get("patient_id")),
        effectiveDateTime=p.get("observed_at"), **value,
        interpretation=[{"coding": [{"system": s.INTERPRETATION, "code": flag}]}] if flag else None,
        referenceRange=[{"text": p["reference_range"]}] if p.get("reference_range") else None)]


# -- allergies and intolerances ------------------------------------------------------------

# The drug catalogue (sync_protocol's package data); the hub reads its INN -> ATC codes.
DRUG_CATALOGUE = drug_catalogue.CATALOGUE


@functools.cache
def atc_of_inn(path: Traversable | Path = DRUG_CATALOGUE) -> dict[str, str]:
    """INN (casefolded) -> ATC code, from the drug catalogue; empty when it is missing."""
    try:
        drugs = drug_catalogue.read_drugs(path)
    except (OSError, ValueError, KeyError):
        log.warning("drug catalogue %s unreadable: allergies carry no ATC code", path)
        return {}
    return {inn.casefold(): d["atc"] for inn, d in drugs.items() if d.get("atc")}


def allergy_intolerance(row: dict[str, Any]) -> list[Resource]:
    substance = row["substance"]
    if row["substance_type"] == "atc":
        code: dict[str, Any] = {"coding": [{"system": s.ATC, "code": substance}],
                                "text": substance}
    else:
        atc = atc_of_inn().get(substance.casefold())
        code = {"coding": [{"system": s.ATC, "code": atc}] if atc else None, "text": substance}
    retracted = bool(row.get("retracted_at"))
    return [resource(
        "AllergyIntolerance", row["fhir_id"], row,
        clinicalStatus={"coding": [{"system": s.ALLERGY_CLINICAL,
                                    "code": "inactive" if retracted else "active"}]},
        verificationStatus={"coding": [{"system": s.ALLERGY_VERIFICATION,
                                        "code": "confirmed"}]},
        type=row["kind"], category=["medication"], code=code,
        patient=ref("Patient", row["patient_id"]), recordedDate=row["recorded_at"],
        recorder=ref("Practitioner", row.get("recorded_by")),
        note=[{"text": f"Retracted {row['retracted_at']}: {row.get('retract_reason') or ''}"
                       .strip()}] if retracted else None,
        reaction=[{"manifestation": [{"text": row["reaction"]}],
                   "severity": row.get("severity")}])]


# -- prescriptions and dispenses ------------------------------------------------------------

def request_status(row: dict[str, Any], now: str) -> str:
    """As sources.REQUEST_STATUS_SQL computes it (search by status)."""
    if row["status"] == "cancelled":
        return "cancelled"
    if (row.get("dispensed") or 0) >= row["quantity"] * (row["repeats"] + 1):
        return "completed"
    return "stopped" if row["expires_at"] < now else "active"


def signing_kid(qr: str | None) -> str | None:
    """The key id of the certificate that signed the prescription's QR code."""
    if not qr:
        return None
    try:
        transport = decode_transport(qr)
        kid = cose.decode_sign1(transport.cose).kid if transport.cose else None
    except Exception:  # a code the hub cannot read names no certificate; the rest still maps
        log.debug("prescription QR code not decodable", exc_info=True)
        return None
    return kid.hex() if kid else None


def _atc(row: dict[str, Any]) -> str | None:
    for item in payload_of(row, "issued_payload").get("items", ()):
        if item.get("item_no") == row["item_no"]:
            return item.get("atc")
    return None


def _ids(text: Any) -> list[str]:
    return sorted(str(v) for v in str(text).split(",") if v) if text else []


def medication_request(row: dict[str, Any], now: str) -> list[Resource]:
    paper = row["kind"] == "paper"
    atc = _atc(row)
    dispenses = _ids(row.get("dispense_events"))
    events = [row["event_id"], row.get("cancel_event_id"), *dispenses]
    medication = " ".join(v for v in (row["inn"], row["form"], row["strength"]) if v)
    return [resource(
        "MedicationRequest", row["fhir_id"], row,
        extension=[
            {"url": s.EXT_MEDIUM, "valueCode": "paper" if paper else "electronic"},
            {"url": s.EXT_PAPER_REASON, "valueCode": row.get("paper_reason")},
            {"url": s.EXT_SIGNING_NODE,
             "valueIdentifier": {"system": s.NODE_ID, "value": row["origin"]}},
            {"url": s.EXT_SIGNING_CERT, "valueString": signing_kid(row.get("qr"))},
            *({"url": s.EXT_DISPENSED_AS, "valueReference": ref("MedicationDispense", d)}
              for d in dispenses)],
        identifier=[{"system": s.PRESCRIPTION_ID, "value": row["prescription_id"]},
                    {"system": s.PAPER_SERIAL, "value": row.get("paper_serial")}],
        status=request_status(row, now),
        statusReason={"text": row.get("cancel_reason")} if row.get("cancel_reason") else None,
        intent="order",
        medicationCodeableConcept={
            "coding": [{"system": s.ATC, "code": atc, "display": row["inn"]}] if atc else None,
            "text": medication},
        subject=ref("Patient", row["patient_id"]),
        authoredOn=row["issued_at"],
        requester=ref("Practitioner", row["practitioner_id"]),
        groupIdentifier={"system": s.PRESCRIPTION_NUMBER, "value": row["number"]},
        courseOfTherapyType={"coding": [{"system": s.COURSE_OF_THERAPY,
                                         "code": "continuous" if row["chronic"] else "acute"}]},
        dosageInstruction=[{"text": row["dosage"]}] if row.get("dosage") else None,
        dispenseRequest={
            "validityPeriod": {"start": row["not_before"], "end": row["expires_at"]},
            "numberOfRepeatsAllowed": row["repeats"],
            "quantity": clean({"value": row["quantity"], "unit": row.get("unit")}),
            "dispenseInterval": {"value": row["min_days_between_fills"], "unit": "d",
                                 "system": s.UCUM, "code": "d"}
            if row["min_days_between_fills"] else None,
            "performer": None},
        eventHistory=[ref("Provenance", e) for e in events if e])]


def medication_dispense(row: dict[str, Any]) -> list[Resource]:
    product = {"resourceType": "Medication", "id": "product",
               "code": {"text": row["product"]},
               "batch": {"lotNumber": row["batch"], "expirationDate": row["expiry"]}}
    request = f"{row['prescription_id']}-{row['item_no']}"
    return [resource(
        "MedicationDispense", row["fhir_id"], row,
        contained=[product],
        extension=[{"url": s.EXT_DISPENSE_MODE, "valueCode": row["mode"]}],
        identifier=[{"system": s.DISPENSE_ID, "value": row["dispense_id"]}],
        status="completed",
        medicationReference={"reference": "#product", "display": row["product"]},
        subject=ref("Patient", row.get("patient_id")),
        performer=[{"actor": ref("Organization", row["facility_id"])},
                   *([{"actor": {"display": row["pharmacist"]}}] if row.get("pharmacist")
                     else [])],
        location=ref("Location", row["facility_id"]),
        authorizingPrescription=[ref("MedicationRequest", request)],
        quantity=clean({"value": row["quantity"], "unit": row.get("unit")}),
        whenHandedOver=row["dispensed_at"])]


# -- provenance ------------------------------------------------------------------------------

def provenance_targets(row: dict[str, Any]) -> list[str]:
    """The resources an event stands behind, as references."""
    kind, subject = row["type"], row.get("subject_id")
    if kind in (PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED):
        return [f"MedicationRequest/{subject}-{n}" for n in _ids(row.get("items"))]
    if kind == MEDICATION_DISPENSED:
        return [f"MedicationDispense/{row['fhir_id']}"]
    if kind in (ALLERGY_RECORDED, ALLERGY_RETRACTED):
        allergy_id = row.get("allergy_id") or payload_of(row).get("allergy_id")
        return [f"AllergyIntolerance/{allergy_id}"] if allergy_id else []
    if kind == LAB_RESULT_RECORDED:
        return [f"Observation/{row['fhir_id']}"]
    if kind == VISIT_RECORDED:
        count = len(payload_of(row).get("diagnoses") or ())
        return [f"Encounter/{subject}", *(f"Condition/{subject}-{n}"
                                          for n in range(1, count + 1))]
    if kind == FACILITY_REGISTERED:
        return [f"Organization/{subject}", f"Location/{subject}"]
    if kind == PRACTITIONER_REGISTERED:
        return [f"Practitioner/{subject}"]
    if kind.startswith("Appointment"):
        return [f"Appointment/{subject}"]
    return [f"Patient/{subject}"] if subject else []


def provenance(row: dict[str, Any]) -> list[Resource]:
    targets = provenance_targets(row)
    if not targets:  # FHIR needs a target: an event about nothing the hub serves has none
        return []
    node = {"identifier": {"system": s.NODE_ID, "value": row["origin"]},
            "display": row["origin"]}
    return [resource(
        "Provenance", row["fhir_id"], row,
        extension=[{"url": s.EXT_EVENT_TYPE, "valueCode": row["type"]},
                   {"url": s.EXT_EVENT_SEQUENCE, "valueInteger": int(row["seq"])},
                   {"url": s.EXT_EVENT_HASH, "valueString": row["hash"]},
                   {"url": s.EXT_HLC, "valueString": row["hlc"]}],
        target=[{"reference": t} for t in targets],
        recorded=instant_of_hlc(row["hlc"]),
        activity={"coding": [{"system": s.PROVENANCE_ACTIVITY,
                              "code": s.PROVENANCE_ACTIVITY_OF.get(row["type"], "UPDATE")}]},
        agent=[{"type": {"coding": [{"system": s.PROVENANCE_AGENT, "code": "author"}]},
                "who": node}],
        entity=[{"role": "source", "what": {"identifier": {"system": s.EVENT_ID,
                                                           "value": row["fhir_id"]},
                                            "display": f"{row['origin']}#{row['seq']}"}}])]
