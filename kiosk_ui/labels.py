"""Words for the codes the services use (specialties, statuses, reasons), in every language."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from sync_protocol.conflicts import (
    ACKNOWLEDGED,
    DISPENSE_AFTER_CANCELLATION,
    DISPENSE_AFTER_EXPIRY,
    DISPENSE_AFTER_REVOCATION,
    DOUBLE_BOOKING,
    IDENTITY_CLASH,
    OPEN,
    OVER_DISPENSING,
    PAPER_MISMATCH,
    PATIENT_FIELD,
    RESOLVED,
)
from sync_protocol.event_names import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_RESCHEDULED,
    MEDICATION_DISPENSED,
    PAPER_DISPENSE_RECORDED,
    PATIENT_FIELD_CHANGED,
    PATIENT_REGISTERED,
    PRESCRIPTION_CANCELLED,
    PRESCRIPTION_ISSUED,
)

log = logging.getLogger(__name__)

SPECIALTIES = {
    "family_medicine": _l("Family doctor"),
    "therapy": _l("General practitioner (therapist)"),
    "paediatrics": _l("Paediatrician"),
    "cardiology": _l("Cardiologist"),
    "neurology": _l("Neurologist"),
    "endocrinology": _l("Endocrinologist"),
    "gynaecology": _l("Gynaecologist"),
    "surgery": _l("Surgeon"),
    "ophthalmology": _l("Ophthalmologist"),
    "otolaryngology": _l("ENT doctor"),
    "dermatology": _l("Dermatologist"),
    "dentistry": _l("Dentist"),
    "laboratory": _l("Laboratory"),
}

STATUSES = {
    "booked": _l("Booked"),
    "checked_in": _l("Checked in"),
    "completed": _l("Completed"),
    "no_show": _l("Did not come"),
    "cancelled": _l("Cancelled"),
    "active": _l("Active"),
    "expired": _l("Expired"),
    "dispensed": _l("Dispensed"),
}

READ_REASONS = {
    "visit": _l("Visit"),
    "consultation": _l("Consultation"),
    "emergency": _l("Emergency"),
    "patient_request": _l("At the patient's request"),
    "follow_up": _l("Follow-up"),
}

ORDER_KINDS = {
    "lab": _l("Laboratory test"),
    "imaging": _l("Imaging"),
    "procedure": _l("Procedure"),
    "referral": _l("Referral"),
    "advice": _l("Advice"),
}

ALLERGY_KINDS = {"allergy": _l("Allergy"), "intolerance": _l("Intolerance")}

SEVERITIES = {"mild": _l("Mild"), "moderate": _l("Moderate"), "severe": _l("Severe")}

LAB_FLAGS = {
    "": _l("Not flagged"),
    "normal": _l("Normal"),
    "low": _l("Low"),
    "high": _l("High"),
    "abnormal": _l("Abnormal"),
}

# Form fields named in service messages ("%(field)s is required"), as the form labels them.
FIELDS = {
    "test": _l("Test"),
    "value": _l("Value"),
    "unit": _l("Unit"),
    "reference_range": _l("Reference range"),
    "flag": _l("Flag"),
    "text": _l("Order text"),
    "complaints": _l("Complaints"),
    "notes": _l("Notes"),
    "full_name": _l("Full name"),
    "phone": _l("Phone"),
}

# A call-centre request's state (remote_requests.STATUSES), and the list's "all" filter.
REQUEST_STATUSES = {
    "requested": _l("Waiting"),
    "approved": _l("Approved"),
    "declined": _l("Declined"),
    "all": _l("All"),
}

# Conflicts as the hub raises them (sync_protocol.conflicts) and their states.
CONFLICT_KINDS = {
    OVER_DISPENSING: _l("More dispensed than prescribed"),
    DISPENSE_AFTER_CANCELLATION: _l("Dispensed after the prescription was cancelled"),
    DISPENSE_AFTER_EXPIRY: _l("Dispensed outside the prescription's validity"),
    DISPENSE_AFTER_REVOCATION: _l("Dispensed after the signer's key was revoked"),
    DOUBLE_BOOKING: _l("One slot booked twice"),
    PATIENT_FIELD: _l("A patient's detail changed at two places"),
    PAPER_MISMATCH: _l("Paper records do not match"),
    IDENTITY_CLASH: _l("One identity on two patient records"),
}
CONFLICT_STATES = {
    OPEN: _l("Open"),
    ACKNOWLEDGED: _l("Acknowledged"),
    RESOLVED: _l("Resolved"),
    "all": _l("All"),
}

# What an event involved in a conflict did, in words (the facts it carries follow).
EVENT_WORDS = {
    PRESCRIPTION_ISSUED: _l("Prescription issued"),
    PRESCRIPTION_CANCELLED: _l("Prescription cancelled"),
    MEDICATION_DISPENSED: _l("Medicine dispensed"),
    PAPER_DISPENSE_RECORDED: _l("Paper dispense entered"),
    APPOINTMENT_BOOKED: _l("Visit booked"),
    APPOINTMENT_RESCHEDULED: _l("Visit moved"),
    APPOINTMENT_CANCELLED: _l("Visit cancelled"),
    PATIENT_REGISTERED: _l("Patient registered"),
    PATIENT_FIELD_CHANGED: _l("Patient's detail changed"),
}
FACT_WORDS = {
    "number": _l("Prescription"),
    "item_no": _l("Medicine no."),
    "quantity": _l("Quantity"),
    "product": _l("Product"),
    "batch": _l("Batch"),
    "facility_id": _l("Facility"),
    "dispensed_at": _l("Dispensed at"),
    "starts_at": _l("Visit time"),
    "practitioner_id": _l("Doctor"),
    "field": _l("Field"),
    "issued_at": _l("Issued"),
    "expires_at": _l("Valid until"),
    "paper_serial": _l("Paper serial"),
    "prescription_number": _l("Prescription"),
    "reason": _l("Reason"),
    "substance": _l("Medicine or ATC class"),
    "reaction": _l("Reaction"),
    "allergy_override": _l("Reason to prescribe despite the allergy"),
}

# The catalogue's dosage forms (sync_protocol/data/drugs.json), in the patient's and pharmacist's
# language; the catalogue keeps the English term as the code.
DRUG_FORMS = {
    "capsule": _l("capsule"),
    "chewable tablet": _l("chewable tablet"),
    "dispersible tablet": _l("dispersible tablet"),
    "effervescent tablet": _l("effervescent tablet"),
    "emulsion for injection": _l("emulsion for injection"),
    "eye drops": _l("eye drops"),
    "gastro-resistant tablet": _l("gastro-resistant tablet"),
    "granules for oral solution": _l("granules for oral solution"),
    "granules for oral suspension": _l("granules for oral suspension"),
    "inhalation aerosol": _l("inhalation aerosol"),
    "inhalation powder": _l("inhalation powder"),
    "inhalation spray": _l("inhalation spray"),
    "modified-release tablet": _l("modified-release tablet"),
    "nasal spray": _l("nasal spray"),
    "nebuliser solution": _l("nebuliser solution"),
    "nebuliser suspension": _l("nebuliser suspension"),
    "oral drops": _l("oral drops"),
    "oral emulsion": _l("oral emulsion"),
    "oral solution": _l("oral solution"),
    "oral suspension": _l("oral suspension"),
    "powder for injection": _l("powder for injection"),
    "powder for oral suspension": _l("powder for oral suspension"),
    "solution for infusion": _l("solution for infusion"),
    "solution for injection": _l("solution for injection"),
    "sublingual spray": _l("sublingual spray"),
    "sublingual tablet": _l("sublingual tablet"),
    "suppository": _l("suppository"),
    "suspension for injection": _l("suspension for injection"),
    "syrup": _l("syrup"),
    "tablet": _l("tablet"),
    "transdermal patch": _l("transdermal patch"),
}

# What each permission (edge_node.services.access.PERMISSIONS) lets a person do, for the
# "may not do this" message: a screen never shows a permission's code.
PERMISSION_WORDS = {
    "manage_facility": _l("change the facility's details"),
    "manage_staff": _l("manage staff accounts"),
    "manage_schedule": _l("change doctors' schedules"),
    "view_patient": _l("look patients up"),
    "view_schedule": _l("see the schedule"),
    "export_log": _l("export the node's log"),
    "register_patient": _l("register patients"),
    "edit_patient": _l("change a patient's details"),
    "book": _l("book visits"),
    "check_in": _l("check patients in"),
    "complete_visit": _l("complete visits"),
    "read_card": _l("open medical cards"),
    "write_clinical": _l("write diagnoses and orders"),
    "prescribe": _l("write prescriptions"),
    "find_patient_for_dispensing": _l("look patients up for dispensing"),
    "verify_prescription": _l("check prescriptions at the counter"),
    "dispense": _l("dispense medicines"),
    "book_own": _l("book their own visits"),
    "read_own_card": _l("see their own card"),
    "view_conflicts": _l("review sync conflicts"),
}
SOME_ACTION = _l("do this")  # a permission this table does not know yet

SEXES = {"male": _l("Male"), "female": _l("Female")}

ROLES = {
    "registrar": _l("Registrar"),
    "doctor": _l("Doctor"),
    "pharmacist": _l("Pharmacist"),
    "admin": _l("Administrator"),
    "patient": _l("Patient"),
}

# Language names are shown in their own language, so anyone finds theirs (never translated).
LANGUAGES = (("uz", "O‘zbekcha"), ("ru", "Русский"), ("en", "English"))


def label(table: dict, code: str | None) -> str:
    """The translated word for a code; an unknown code is shown as it is, never hidden."""
    if code is None:
        return ""
    value = table.get(code)
    return str(value) if value is not None else str(code)
