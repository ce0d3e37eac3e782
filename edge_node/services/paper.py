"""Paper fallback: prescriptions and dispenses written on paper during an outage or an
emergency, entered on the node afterwards with both times.

What happened on paper happened: entry refuses only what the person at the keyboard can fix
(a malformed serial, a serial already entered here, a drug that can never be on a
prescription); everything else is recorded and reconciled at the hub, which raises the
mismatches (serial not this facility's, used twice, more than prescribed, ...).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sync_protocol.event_names import PAPER_DISPENSE_RECORDED, PRESCRIPTION_ISSUED
from sync_protocol.identifiers import (
    format_pad_serial,
    new_ulid,
    parse_document,
    parse_pinfl,
    read_pad_serial,
)
from sync_protocol.payloads import prescription_issued
from sync_protocol.timeutil import from_instant, to_instant, utc_now

from ..catalogue import Catalogue
from ..errors import Conflict, ValidationFailed
from ..prescribing_rules import check_prescription
from ..store import NodeStore
from .access import Actor
from .facilities import load_practitioner
from .patients import load_patient
from .prescribing import _item_requests, load_chronic, plan_items

log = logging.getLogger(__name__)

PAPER_REASONS = ("outage", "emergency")
# Paper is entered within days; a paper record dated months back is a typing error.
MAX_LATE_DAYS = 30


def parse_serial(text: str) -> tuple[str, int]:
    """A pad serial such as TAS-000123: series letters and a number."""
    parsed = read_pad_serial(text)
    if parsed is None:
        raise ValidationFailed("A paper serial is the pad's letters and number, e.g. "
                               "TAS-000123", field="paper_serial")
    return parsed


format_serial = format_pad_serial


def _original_time(value: datetime | str, now: datetime, field: str) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else from_instant(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed("Give the time written on the paper (ISO 8601 with zone)",
                               field=field) from None
    if moment > now:
        raise ValidationFailed("The time on the paper cannot be in the future", field=field)
    if (now - moment).days > MAX_LATE_DAYS:
        raise ValidationFailed("The paper is dated more than %(days)s days ago: check the date",
                               field=field, days=MAX_LATE_DAYS)
    return moment


def _reason(reason: str) -> str:
    if reason not in PAPER_REASONS:
        raise ValidationFailed("Say why paper was used: outage or emergency",
                               field="paper_reason")
    return reason


def serial_held(store: NodeStore, facility_id: str, serial: str) -> bool:
    series, number = parse_serial(serial)
    return store.one("SELECT 1 FROM paper_pads WHERE facility_id = ? AND series = ? AND"
                     " ? BETWEEN first_serial AND last_serial",
                     (facility_id, series, number)) is not None


def pads(store: NodeStore, facility_id: str) -> list[dict]:
    rows = store.query("SELECT * FROM paper_pads WHERE facility_id = ? ORDER BY series,"
                       " first_serial", (facility_id,))
    return [dict(r) for r in rows]


def enter_paper_prescription(store: NodeStore, actor: Actor, *, facility_id: str,
                             paper_serial: str, patient_id: str, practitioner_id: str,
                             items: list[dict], paper_reason: str,
                             issued_at: datetime | str, now: datetime | None = None) -> dict:
    """A prescription written on paper, entered by the registrar or the doctor."""
    if not (actor.can("prescribe") or actor.can("register_patient")):
        actor.require("prescribe")
    now = now or utc_now()
    series, number = parse_serial(paper_serial)
    serial = format_serial(series, number)
    issued = _original_time(issued_at, now, "issued_at").replace(microsecond=0)
    reason = _reason(paper_reason)
    requests = _item_requests(items)
    with store.transaction() as tx:
        patient = load_patient(tx.conn, patient_id)
        load_practitioner(tx.conn, practitioner_id)
        if not patient["pinfl"]:
            raise ValidationFailed("Record the patient's PINFL first: prescriptions are bound "
                                   "to it", field="patient_id", code="no_pinfl")
        if tx.one("SELECT 1 FROM prescriptions WHERE paper_serial = ?", (serial,)):
            raise Conflict("Paper serial %(serial)s is already entered on this node",
                           field="paper_serial", code="serial_entered", serial=serial)
        plan = check_prescription(requests, Catalogue.load(), load_chronic(tx.conn, patient_id),
                                  issued)
        prescription_id = new_ulid()
        tx.append(PRESCRIPTION_ISSUED, prescription_issued(
            prescription_id=prescription_id, number=f"P-{serial}", kind="paper",
            patient_id=patient_id, pinfl=patient["pinfl"], facility_id=facility_id,
            practitioner_id=practitioner_id, issued_at=to_instant(issued),
            not_before=to_instant(plan.not_before), expires_at=to_instant(plan.expires_at),
            chronic=plan.chronic, paper_serial=serial,
            patient_document=patient["document"] or None, paper_reason=reason,
            entered_at=to_instant(now), items=plan_items(plan.items)))
    warnings = [] if serial_held(store, facility_id, serial) else ["serial_not_held"]
    return {"prescription_id": prescription_id, "number": f"P-{serial}", "warnings": warnings}


def enter_paper_dispense(store: NodeStore, actor: Actor, *, facility_id: str,
                         items: list[dict], paper_reason: str, dispensed_at: datetime | str,
                         paper_serial: str | None = None, prescription_number: str | None = None,
                         patient_document: str | None = None, pinfl: str | None = None,
                         now: datetime | None = None) -> dict:
    """A line of the pharmacy's paper dispense log, entered after the outage."""
    actor.require("dispense")
    now = now or utc_now()
    if not paper_serial and not prescription_number:
        raise ValidationFailed("Give the paper serial or the e-prescription number",
                               field="paper_serial")
    if not patient_document and not pinfl:
        raise ValidationFailed("Give the patient's identity document or PINFL",
                               field="patient_document")
    payload: dict[str, Any] = {
        "dispense_id": new_ulid(), "facility_id": facility_id,
        "dispensed_at": to_instant(_original_time(dispensed_at, now, "dispensed_at")),
        "entered_at": to_instant(now), "paper_reason": _reason(paper_reason),
        "items": _dispensed_items(items, now), "pharmacist": actor.display_name or actor.actor_id}
    if paper_serial:
        payload["paper_serial"] = format_serial(*parse_serial(paper_serial))
    if prescription_number:
        payload["prescription_number"] = str(prescription_number).strip()
        known = store.one("SELECT prescription_id FROM prescriptions WHERE number = ?",
                          (payload["prescription_number"],))
        if known:
            payload["prescription_id"] = known["prescription_id"]
    if patient_document:
        payload["patient_document"] = str(parse_document(patient_document))
    if pinfl:
        payload["pinfl"] = parse_pinfl(pinfl).digits
    with store.transaction() as tx:
        tx.append(PAPER_DISPENSE_RECORDED, payload)
    return {"dispense_id": payload["dispense_id"]}


def _dispensed_items(items: Any, now: datetime) -> list[dict]:
    if not isinstance(items, list) or not 1 <= len(items) <= 5:
        raise ValidationFailed("A paper dispense lists 1 to 5 items", field="items")
    catalogue = Catalogue.load()
    checked = []
    for index, item in enumerate(items):
        at = f"items[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed("Each item must be an object", field=at)
        presentation = catalogue.validate_form_strength(str(item.get("inn", "")),
                                                        str(item.get("form", "")),
                                                        str(item.get("strength", "")))
        quantity = item.get("quantity")
        if type(quantity) is not int or quantity < 1:
            raise ValidationFailed("Quantity must be a whole number of at least 1",
                                   field=f"{at}.quantity")
        for name in ("product", "batch"):
            if not str(item.get(name, "")).strip():
                raise ValidationFailed("%(name)s is required", field=f"{at}.{name}", name=name)
        try:
            expiry = date.fromisoformat(str(item.get("expiry", "")))
        except ValueError:
            raise ValidationFailed("Expiry date must be YYYY-MM-DD",
                                   field=f"{at}.expiry") from None
        checked.append({"inn": presentation.drug.inn, "form": presentation.form.form,
                        "strength": presentation.strength, "quantity": quantity,
                        "product": str(item["product"]).strip()[:200],
                        "batch": str(item["batch"]).strip()[:64],
                        "expiry": expiry.isoformat()})
    return checked
