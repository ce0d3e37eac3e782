"""Where each resource type comes from: one SELECT per type over the hub's projections
(or, for records without a projection table, its log), and the search parameters it takes.

Every SELECT gives `fhir_id`, `region` (least knowledge: a client sees its regions only) and
`since` (the hybrid-logical-clock of the record's source event, for `_since` and
meta.lastUpdated), plus the columns its mapping function reads. Search code wraps it as
`SELECT * FROM (<sql>) r WHERE ...`, so parameters name the columns as r.<column>.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync_protocol.event_names import (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
    FACILITY_REGISTERED,
    LAB_RESULT_RECORDED,
    MEDICATION_DISPENSED,
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
    PRACTITIONER_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
    VISIT_RECORDED,
    sql_literals,
)

from ..storage.base import POSTGRESQL
from . import mapping

TOKEN, REFERENCE, DATE, STRING = "token", "reference", "date", "string"


@dataclass(frozen=True)
class Param:
    """A search parameter: its FHIR type and the SQL it filters on (r.<column>)."""

    kind: str
    column: str
    doc: str
    target: str | None = None  # reference parameters: the resource type referred to
    codes: tuple[str, ...] = ()  # token parameters with a closed set of values


@dataclass(frozen=True)
class Source:
    resource_type: str
    sql: str  # may hold {agg} (string aggregation) and {greatest}, named per dialect
    to_resources: Callable[..., list[dict[str, Any]]]
    order: str
    id_columns: tuple[str, ...] = ("fhir_id",)  # an id "a-b" filters on two columns
    params: dict[str, Param] = field(default_factory=dict)
    since: str = "r.since >= ?"
    needs_now: bool = False

    def select(self, dialect: str) -> str:
        postgres = dialect == POSTGRESQL
        return self.sql.replace("{agg}", "string_agg" if postgres else "group_concat").replace(
            "{greatest}", "GREATEST" if postgres else "MAX").replace(
            "{allergy_id}", "e.payload->>'allergy_id'" if postgres
            else "json_extract(e.payload, '$.allergy_id')")

    def split_id(self, resource_id: str) -> tuple[str, ...] | None:
        if len(self.id_columns) == 1:
            return (resource_id,)
        head, sep, tail = resource_id.rpartition("-")
        # an item or diagnosis number is small; a long one would overflow the integer column
        return (head, tail) if sep and head and tail.isdigit() and len(tail) <= 3 else None

    def id_filter(self) -> str:
        return " AND ".join(f"r.{c} = ?" for c in self.id_columns)


_FACILITY = "LEFT JOIN scope_facilities f ON f.facility_id = {table}.facility_id"
# The newest registration event of a facility or practitioner (registered again: it wins).
_LATEST = ("e.position = (SELECT MAX(x.position) FROM events x WHERE x.type = e.type AND "
           "x.subject_id = e.subject_id)")


def _registry(kind: str) -> str:
    return (f"SELECT e.subject_id AS fhir_id, e.payload, e.region, e.hlc AS since FROM events e "  # noqa: S608 - constants
            f"WHERE e.type = '{kind}' AND {_LATEST}")


def _log(kind: str, id_column: str = "e.subject_id") -> str:
    return (f"SELECT {id_column} AS fhir_id, e.payload, e.region, e.hlc AS since, e.patient_id, "  # noqa: S608 - constants
            f"e.facility_id FROM events e WHERE e.type = '{kind}'")


APPOINTMENT_TYPES = (APPOINTMENT_BOOKED, APPOINTMENT_CANCELLED, APPOINTMENT_RESCHEDULED,
                     APPOINTMENT_CHECKED_IN, APPOINTMENT_COMPLETED, APPOINTMENT_NO_SHOW)
# The events Provenance stands behind: those of every served resource type.
PROVENANCE_TYPES = (PATIENT_REGISTERED, PATIENT_FIELD_CHANGED, PATIENT_PHONE_CONFIRMED,
                    FACILITY_REGISTERED, PRACTITIONER_REGISTERED, *APPOINTMENT_TYPES,
                    VISIT_RECORDED, LAB_RESULT_RECORDED, PRESCRIPTION_ISSUED,
                    PRESCRIPTION_CANCELLED, MEDICATION_DISPENSED, ALLERGY_RECORDED,
                    ALLERGY_RETRACTED)
FACILITY_SQL = (
    "SELECT s.facility_id AS fhir_id, s.code, s.kind, s.region, "  # noqa: S608
    f"(SELECT e.payload FROM events e WHERE e.type = '{FACILITY_REGISTERED}' AND e.subject_id = "
    "s.facility_id ORDER BY e.position DESC LIMIT 1) AS payload, "
    f"(SELECT e.hlc FROM events e WHERE e.type = '{FACILITY_REGISTERED}' AND e.subject_id = "
    "s.facility_id ORDER BY e.position DESC LIMIT 1) AS since FROM scope_facilities s")

# A prescription item's status as mapping.request_status computes it ("?" is now).
REQUEST_STATUS_SQL = (
    "(CASE WHEN r.status = 'cancelled' THEN 'cancelled' WHEN COALESCE(r.dispensed, 0) >= "
    "r.quantity * (r.repeats + 1) THEN 'completed' WHEN r.expires_at < ? THEN 'stopped' "
    "ELSE 'active' END)")
REQUEST_STATUSES = ("active", "cancelled", "completed", "stopped")
APPOINTMENT_STATUSES = tuple(sorted(set(mapping.s.APPOINTMENT_STATUS.values())))
_APPOINTMENT_STATUS_SQL = "(CASE r.status " + " ".join(
    f"WHEN '{ours}' THEN '{theirs}'" for ours, theirs in mapping.s.APPOINTMENT_STATUS.items()
) + " ELSE 'booked' END)"

PATIENT = Param(REFERENCE, "r.patient_id", "the patient (Patient/id)", target="Patient")

SOURCES: dict[str, Source] = {s.resource_type: s for s in (
    Source("Patient", (
        "SELECT p.patient_id AS fhir_id, p.med_id, p.pinfl, p.document, "  # noqa: S608
        "p.full_name, p.birth_date, p.sex, p.phone, p.facility_id, p.family_doctor_id, f.region, "
        # changed since: the latest value of any field (every one is in the history)
        "COALESCE((SELECT MAX(h.hlc) FROM hub_patient_history h WHERE h.patient_id = "
        "p.patient_id), p.registered_hlc) AS since FROM hub_patients p " +
        _FACILITY.format(table="p") + " WHERE p.registered = 1"), mapping.patient, "r.fhir_id",
        params={"identifier": Param(TOKEN, "", "PINFL, identity document or MED-ID, as "
                                    "system|value or value")}),
    Source("Practitioner", _registry(PRACTITIONER_REGISTERED), mapping.practitioner,
           "r.fhir_id"),
    Source("Organization", FACILITY_SQL, mapping.organization, "r.fhir_id"),
    Source("Location", FACILITY_SQL, mapping.location, "r.fhir_id"),
    Source("Appointment", (
        "SELECT a.appointment_id AS fhir_id, a.*, sl.ends_at, f.region, "  # noqa: S608
        # changed since: its latest event (moved, checked in, cancelled...)
        "COALESCE((SELECT MAX(x.hlc) FROM hub_appointment_events x WHERE x.appointment_id = "
        "a.appointment_id), a.booked_hlc) AS since "
        "FROM hub_appointments a LEFT JOIN hub_slots sl ON sl.practitioner_id = "
        "a.practitioner_id AND sl.starts_at = a.starts_at " + _FACILITY.format(table="a")),
        mapping.appointment, "r.fhir_id",
        params={"date": Param(DATE, "r.starts_at", "the appointment's start"),
                "practitioner": Param(REFERENCE, "r.practitioner_id", "the practitioner",
                                      target="Practitioner"),
                "location": Param(REFERENCE, "r.facility_id", "the facility",
                                  target="Location"),
                "patient": PATIENT,
                "status": Param(TOKEN, _APPOINTMENT_STATUS_SQL, "the status",
                                codes=APPOINTMENT_STATUSES)}),
    Source("Encounter", _log(VISIT_RECORDED), mapping.encounter, "r.fhir_id",
           params={"patient": PATIENT}),
    Source("Condition", _log(VISIT_RECORDED), mapping.conditions, "r.fhir_id",
           id_columns=("fhir_id", "diagnosis"), params={"patient": PATIENT}),
    Source("Observation", _log(LAB_RESULT_RECORDED, "e.id"), mapping.observation, "r.fhir_id",
           params={"patient": PATIENT}),
    Source("MedicationRequest", (
        "SELECT p.prescription_id || '-' || CAST(i.item_no AS TEXT) AS fhir_id, "  # noqa: S608
        "p.*, "
        "i.item_no, i.inn, i.form, i.strength, i.unit, i.quantity, i.dosage, i.repeats, "
        "i.min_days_between_fills, f.region, "
        # changed since: issued, cancelled or dispensed from, whichever came last
        "{greatest}(p.hlc, COALESCE((SELECT c.hlc FROM hub_prescription_cancellations c WHERE "
        "c.event_id = p.cancel_event_id), p.hlc), COALESCE((SELECT MAX(d.hlc) FROM "
        "hub_dispenses d WHERE d.prescription_id = p.prescription_id AND d.item_no = "
        "i.item_no), p.hlc)) AS since, "
        "(SELECT SUM(d.quantity) FROM hub_dispenses d WHERE d.prescription_id = "
        "p.prescription_id AND d.item_no = i.item_no) AS dispensed, "
        "(SELECT {agg}(d.event_id, ',') FROM hub_dispenses d WHERE d.prescription_id = "
        "p.prescription_id AND d.item_no = i.item_no) AS dispense_events, "
        "(SELECT e.payload FROM events e WHERE e.id = p.event_id) AS issued_payload "
        "FROM hub_prescriptions p JOIN hub_prescription_items i ON i.prescription_id = "
        "p.prescription_id " + _FACILITY.format(table="p")),
        mapping.medication_request, "r.prescription_id, r.item_no",
        id_columns=("prescription_id", "item_no"), needs_now=True,
        params={"patient": PATIENT,
                "status": Param(TOKEN, REQUEST_STATUS_SQL, "the status",
                                codes=REQUEST_STATUSES),
                "authoredon": Param(DATE, "r.issued_at", "when it was written"),
                "date": Param(DATE, "r.not_before", "start of validity")}),
    Source("MedicationDispense", (
        "SELECT d.event_id AS fhir_id, d.*, p.patient_id, i.unit, f.region, d.hlc AS since "
        "FROM hub_dispenses d LEFT JOIN hub_prescriptions p ON p.prescription_id = "
        "d.prescription_id LEFT JOIN hub_prescription_items i ON i.prescription_id = "
        "d.prescription_id AND i.item_no = d.item_no " + _FACILITY.format(table="d")),
        mapping.medication_dispense, "r.fhir_id",
        params={"patient": PATIENT,
                "status": Param(TOKEN, "'completed'", "the status (always completed: the "
                                "hub learns of a dispense once it happened)",
                                codes=("completed",)),
                "whenhandedover": Param(DATE, "r.dispensed_at", "when it was handed over"),
                "prescription": Param(REFERENCE, "r.prescription_id", "the prescription "
                                      "(MedicationRequest/id)", target="MedicationRequest")}),
    Source("AllergyIntolerance", (
        "SELECT a.allergy_id AS fhir_id, a.*, f.region, "  # noqa: S608
        # changed since: recorded or retracted, whichever came last
        "{greatest}(a.hlc, COALESCE((SELECT x.hlc FROM hub_allergy_retractions x WHERE "
        "x.allergy_id = a.allergy_id), a.hlc)) AS since "
        # region least knowledge: the patient's facility's region, as for Patient
        "FROM hub_allergies a LEFT JOIN hub_patients p ON p.patient_id = a.patient_id " +
        _FACILITY.format(table="p")), mapping.allergy_intolerance, "r.fhir_id",
        params={"patient": PATIENT}),
    Source("Provenance", (
        "SELECT e.id AS fhir_id, e.origin, e.seq, e.hlc, e.type, e.hash, e.subject_id, "  # noqa: S608
        "e.patient_id, e.region, e.hlc AS since, e.payload, CASE WHEN e.type IN "
        f"({sql_literals(PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED)}) THEN (SELECT "
        "{agg}(CAST(i.item_no AS TEXT), ',') FROM hub_prescription_items i WHERE "
        "i.prescription_id = e.subject_id) END AS items, CASE WHEN e.type IN "
        f"({sql_literals(ALLERGY_RECORDED, ALLERGY_RETRACTED)}) THEN {{allergy_id}} END AS "
        f"allergy_id FROM events e WHERE e.type IN ({sql_literals(*PROVENANCE_TYPES)})"),
        mapping.provenance, "r.fhir_id",
        params={"target": Param(REFERENCE, "", "the resource it stands behind (Type/id)"),
                "patient": PATIENT}),
)}

# Provenance?target=Type/id: which events stand behind each served type (by subject, or by
# event id for the types whose id is the event's).
TARGET_EVENTS: dict[str, tuple[str, str]] = {
    "Patient": ("subject", sql_literals(PATIENT_REGISTERED, PATIENT_FIELD_CHANGED,
                                        PATIENT_PHONE_CONFIRMED)),
    "Practitioner": ("subject", sql_literals(PRACTITIONER_REGISTERED)),
    "Organization": ("subject", sql_literals(FACILITY_REGISTERED)),
    "Location": ("subject", sql_literals(FACILITY_REGISTERED)),
    "Appointment": ("subject", sql_literals(*APPOINTMENT_TYPES)),
    "Encounter": ("subject", sql_literals(VISIT_RECORDED)),
    "Condition": ("subject", sql_literals(VISIT_RECORDED)),
    "MedicationRequest": ("subject", sql_literals(PRESCRIPTION_ISSUED, PRESCRIPTION_CANCELLED)),
    "MedicationDispense": ("id", sql_literals(MEDICATION_DISPENSED)),
    "Observation": ("id", sql_literals(LAB_RESULT_RECORDED)),
    "AllergyIntolerance": ("allergy", sql_literals(ALLERGY_RECORDED, ALLERGY_RETRACTED)),
}
COMMON_PARAMS = {"_id": "the logical id", "_count": "page size (Bundle links page on)",
                 "_offset": "where the page starts (set by the Bundle's links)"}
