"""The node's records as the services hand them to the web layer: plain typed dicts.

A view gets values, never a connection or a sqlite3.Row: the keys are the table's columns
(templates and JSON read them as before), and mypy knows their types. Flags stored as 0/1
are given as they are stored unless a service says otherwise.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TypedDict, TypeVar, cast

log = logging.getLogger(__name__)


class PatientRecord(TypedDict):
    patient_id: str
    med_id: str
    pinfl: str | None
    document: str | None
    full_name: str
    birth_date: str
    sex: str
    phone: str | None
    phone_confirmed: int
    facility_id: str
    family_doctor_id: str | None
    registered_hlc: str
    name_key: str | None


class PatientSummary(TypedDict):
    """Demographics only: what a registrar or pharmacist may see."""

    patient_id: str
    med_id: str
    pinfl: str | None
    document: str | None
    full_name: str
    birth_date: str
    sex: str
    phone: str | None
    facility_id: str
    family_doctor_id: str | None
    phone_confirmed: bool


class AppointmentRecord(TypedDict):
    appointment_id: str
    patient_id: str
    practitioner_id: str
    facility_id: str
    starts_at: str
    channel: str
    status: str
    queue_number: int | None
    cancel_reason: str | None
    booked_hlc: str
    booked_origin: str


class FacilityDetails(TypedDict):
    facility_id: str
    code: str
    name: str
    kind: str
    region: str
    address: str | None


class PractitionerRecord(TypedDict):
    practitioner_id: str
    facility_id: str
    full_name: str
    specialty: str
    is_family_doctor: int


class PrescriptionRecord(TypedDict):
    prescription_id: str
    number: str
    kind: str
    patient_id: str
    pinfl: str
    facility_id: str
    practitioner_id: str
    issued_at: str
    not_before: str
    expires_at: str
    chronic: int
    qr: str | None
    status: str
    cancelled_at: str | None
    cancel_reason: str | None
    paper_serial: str | None
    paper_reason: str | None
    entered_at: str | None
    patient_document: str | None


class RemoteRequestRecord(TypedDict):
    request_id: str
    patient_id: str
    facility_id: str
    practitioner_id: str | None
    requested_by: str
    request_text: str
    phone: str | None
    requested_at: str
    status: str
    decided_by: str | None
    decided_at: str | None
    decided_hlc: str | None
    decided_origin: str | None
    prescription_id: str | None
    pickup_code: str | None
    note: str | None


Record = TypeVar("Record")


def record(row: sqlite3.Row, shape: type[Record]) -> Record:  # noqa: ARG001 - names the type
    """A row as the typed dict `shape` (the shapes list the tables' columns)."""
    return cast(Record, dict(row))
