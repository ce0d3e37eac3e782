"""Event-type names: the one spelling of every event type the node and the hub emit or read.

Code refers to an event type only through these constants, so a misspelt name is an
ImportError rather than an event that silently matches nothing; a test scans the product
code for bare event-type strings. The payload schema of each type is in
`sync_protocol.event_types`, keyed by these names.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

ALLERGY_RECORDED = "AllergyRecorded"
ALLERGY_RETRACTED = "AllergyRetracted"
APPOINTMENT_BOOKED = "AppointmentBooked"
APPOINTMENT_CANCELLED = "AppointmentCancelled"
APPOINTMENT_CHECKED_IN = "AppointmentCheckedIn"
APPOINTMENT_COMPLETED = "AppointmentCompleted"
APPOINTMENT_NO_SHOW = "AppointmentNoShow"
APPOINTMENT_RESCHEDULED = "AppointmentRescheduled"
CHRONIC_CONDITION_SET = "ChronicConditionSet"
CONFLICT_RAISED = "ConflictRaised"
CONFLICT_STATE_CHANGED = "ConflictStateChanged"
FACILITY_DETAILS_CHANGED = "FacilityDetailsChanged"
FACILITY_REGISTERED = "FacilityRegistered"
LAB_RESULT_RECORDED = "LabResultRecorded"
MEDICATION_DISPENSED = "MedicationDispensed"
ORDER_RECORDED = "OrderRecorded"
PAPER_DISPENSE_RECORDED = "PaperDispenseRecorded"
PAPER_PAD_ALLOCATED = "PaperPadAllocated"
PATIENT_FIELD_CHANGED = "PatientFieldChanged"
PATIENT_PHONE_CONFIRMED = "PatientPhoneConfirmed"
PATIENT_REGISTERED = "PatientRegistered"
PRACTITIONER_REGISTERED = "PractitionerRegistered"
PRESCRIPTION_CANCELLED = "PrescriptionCancelled"
PRESCRIPTION_CLAIMED = "PrescriptionClaimed"
PRESCRIPTION_ISSUED = "PrescriptionIssued"
REMOTE_PRESCRIPTION_DECIDED = "RemotePrescriptionDecided"
REMOTE_PRESCRIPTION_REQUESTED = "RemotePrescriptionRequested"
SLOTS_PUBLISHED = "SlotsPublished"
VISIT_RECORDED = "VisitRecorded"

# Every declared name, in the order above.
ALL: tuple[str, ...] = (
    ALLERGY_RECORDED,
    ALLERGY_RETRACTED,
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
    CHRONIC_CONDITION_SET,
    CONFLICT_RAISED,
    CONFLICT_STATE_CHANGED,
    FACILITY_DETAILS_CHANGED,
    FACILITY_REGISTERED,
    LAB_RESULT_RECORDED,
    MEDICATION_DISPENSED,
    ORDER_RECORDED,
    PAPER_DISPENSE_RECORDED,
    PAPER_PAD_ALLOCATED,
    PATIENT_FIELD_CHANGED,
    PATIENT_PHONE_CONFIRMED,
    PATIENT_REGISTERED,
    PRACTITIONER_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_CLAIMED,
    PRESCRIPTION_ISSUED,
    REMOTE_PRESCRIPTION_DECIDED,
    REMOTE_PRESCRIPTION_REQUESTED,
    SLOTS_PUBLISHED,
    VISIT_RECORDED,
)


def sql_literals(*names: str) -> str:
    """Declared names as SQL string literals, "'A', 'B'", for fixed queries that must carry
    the literal text (a partial index on `type = 'A'` is used only then). Anything not a
    declared name is refused, so no outside text reaches the SQL."""
    unknown = [name for name in names if name not in ALL]
    if unknown or not names:
        raise ValueError(f"not declared event types: {unknown or 'none given'}")
    return ", ".join(f"'{name}'" for name in names)
