"""Allergies and intolerances on the medical card, and the check a prescription must pass.

An allergy names one INN (amoxicillin) or an ATC class (J01C: every penicillin). A drug
matches when its INN is the one named, or its ATC code lies in the class named. The doctor
sees matches as he types and may prescribe anyway only with a reason, kept on the
prescription (PrescriptionIssued.allergy_override).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import datetime

from sync_protocol.errors import ProtocolError
from sync_protocol.event_names import ALLERGY_RECORDED, ALLERGY_RETRACTED
from sync_protocol.event_types import MAX_CLINICAL_NOTE, MAX_OVERRIDDEN_ALLERGIES
from sync_protocol.identifiers import new_ulid
from sync_protocol.payloads import AllergyOverride, allergy_recorded
from sync_protocol.timeutil import to_instant, utc_now

from ..catalogue import Catalogue, normalize_text
from ..errors import Conflict, FieldErrors, NotFound, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .patients import load_patient

log = logging.getLogger(__name__)

KINDS = ("allergy", "intolerance")
SEVERITIES = ("mild", "moderate", "severe")
# An ATC class from the therapeutic group down (J01, J01C, J01CA, J01CA04): a whole
# anatomical group (J) is too broad to be an allergy. An INN never has digits.
ATC_CLASS = re.compile(r"^[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?$")
SUBSTANCE_LENGTH = (2, 200)  # an INN or an ATC code; the event schema's NAME allows 200
MIN_OVERRIDE_REASON = 5  # "ok" is no reason; a few words are


def _substance(text: str | None) -> tuple[str, str]:
    """("atc", "J01C") for an ATC class, else ("inn", the catalogue's INN or the typed one)."""
    raw = " ".join(str(text or "").split())
    code = raw.upper().replace(" ", "")
    if ATC_CLASS.match(code):
        return "atc", code
    if not SUBSTANCE_LENGTH[0] <= len(raw) <= SUBSTANCE_LENGTH[1]:
        raise ValidationFailed("Name the substance: an INN (e.g. amoxicillin) or an ATC class"
                               " (e.g. J01C)", field="substance")
    catalogue = Catalogue.load()
    return "inn", catalogue.get(raw).inn if raw in catalogue else normalize_text(raw)


def _note(text: str | None) -> str | None:
    """The note on one line, or None when it is empty or too long."""
    note = " ".join(str(text or "").split())
    return note if 1 <= len(note) <= MAX_CLINICAL_NOTE else None


def record_allergy(store: NodeStore, actor: Actor, *, patient_id: str, substance: str,
                   reaction: str, kind: str = "allergy", severity: str | None = None,
                   now: datetime | None = None) -> str:
    actor.require("write_clinical")
    payload: dict = {"allergy_id": new_ulid(), "patient_id": patient_id,
                     "recorded_at": to_instant((now or utc_now()).replace(microsecond=0))}
    errors: list[ProtocolError] = []
    try:
        payload["substance_type"], payload["substance"] = _substance(substance)
    except ProtocolError as e:
        errors.append(e)
    payload["reaction"] = _note(reaction)
    if payload["reaction"] is None:
        errors.append(ValidationFailed("Describe the reaction (up to %(limit)s characters)",
                                       field="reaction", limit=MAX_CLINICAL_NOTE))
    if kind not in KINDS:
        errors.append(ValidationFailed("Choose allergy or intolerance", field="kind"))
    if severity and severity not in SEVERITIES:
        errors.append(ValidationFailed("Choose mild, moderate or severe", field="severity"))
    if errors:
        raise errors[0] if len(errors) == 1 else FieldErrors(errors)
    payload["kind"] = kind
    if severity:
        payload["severity"] = severity
    if actor.practitioner_id:
        payload["practitioner_id"] = actor.practitioner_id
    with store.transaction() as tx:
        load_patient(tx.conn, patient_id)
        same = [a for a in active_allergies(tx.conn, patient_id)
                if (a["substance_type"], a["substance"]) ==
                (payload["substance_type"], payload["substance"])]
        if same:
            raise Conflict("This allergy is already on the card", field="substance",
                           code="allergy_recorded")
        tx.append(ALLERGY_RECORDED, allergy_recorded(**payload))
    log.info("allergy %s recorded for patient %s", payload["allergy_id"], patient_id)
    return payload["allergy_id"]


def retract_allergy(store: NodeStore, actor: Actor, allergy_id: str, reason: str,
                    now: datetime | None = None) -> None:
    """Entered in error: the record stays in the log and on the card, marked retracted."""
    actor.require("write_clinical")
    note = _note(reason)
    if note is None:
        raise ValidationFailed("Say why the allergy is removed (up to %(limit)s characters)",
                               field="reason", limit=MAX_CLINICAL_NOTE)
    with store.transaction() as tx:
        row = tx.one("SELECT * FROM allergies WHERE allergy_id = ?", (allergy_id,))
        if row is None:
            raise NotFound("Allergy %(id)s is not known on this node", field="allergy_id",
                           id=allergy_id)
        if row["retracted_at"]:
            raise Conflict("This allergy is already removed", field="allergy_id",
                           code="allergy_retracted")
        tx.append(ALLERGY_RETRACTED, {
            "allergy_id": allergy_id, "patient_id": row["patient_id"], "reason": note,
            "retracted_at": to_instant((now or utc_now()).replace(microsecond=0))})


def active_allergies(conn: sqlite3.Connection, patient_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT * FROM allergies WHERE patient_id = ? AND retracted_at IS NULL"
        " ORDER BY recorded_at, allergy_id", (patient_id,))]


def drug_matches(allergy: dict, inn: str, atc: str | None) -> bool:
    if allergy["substance_type"] == "inn":
        return normalize_text(allergy["substance"]) == normalize_text(inn)
    return atc is not None and atc.upper().startswith(allergy["substance"])


def matching_allergies(store: NodeStore, patient_id: str,
                       drugs: list[tuple[str, str | None]]) -> list[dict]:
    """The patient's active allergies that any (inn, atc) of ``drugs`` matches, with the drug."""
    return load_matching_allergies(store.reader(), patient_id, drugs)


def load_matching_allergies(conn: sqlite3.Connection, patient_id: str,
                            drugs: list[tuple[str, str | None]]) -> list[dict]:
    """matching_allergies, read inside a service's transaction."""
    found = []
    for allergy in active_allergies(conn, patient_id):
        for inn, atc in drugs:
            if drug_matches(allergy, inn, atc):
                found.append({**allergy, "drug": inn})
                break
    return found


def drug_atc(inn: str) -> str | None:
    catalogue = Catalogue.load()
    return catalogue.get(inn).atc if inn in catalogue else None


def check_override(matches: list[dict], override_reason: str | None) -> AllergyOverride | None:
    """None when nothing matches; the override to keep when the doctor gave a reason; else
    the refusal that makes the form show the warning and ask for one."""
    if not matches:
        return None
    reason = " ".join(str(override_reason or "").split())
    if len(reason) < MIN_OVERRIDE_REASON:
        names = ", ".join(sorted({f"{m['drug']} ({m['substance']})" for m in matches}))
        raise Conflict("The patient is allergic to %(drugs)s: prescribe something else, or"
                       " give the reason to prescribe it anyway", field="allergy_override",
                       code="allergy_warning", drugs=names)
    if len(reason) > MAX_CLINICAL_NOTE:
        raise ValidationFailed("The reason is too long (up to %(limit)s characters)",
                               field="allergy_override", limit=MAX_CLINICAL_NOTE)
    return AllergyOverride(
        allergy_ids=[m["allergy_id"] for m in matches][:MAX_OVERRIDDEN_ALLERGIES], reason=reason)
