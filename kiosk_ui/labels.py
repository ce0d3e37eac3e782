"""Words for the codes the services use (specialties, statuses, reasons), in every language."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

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
