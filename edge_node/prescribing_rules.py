"""Pure prescribing rules: what one e-prescription may hold and how long it stays valid.

No I/O and no clock: the caller passes the catalogue and the issue instant, and gets back a
``PrescriptionPlan`` or a ``PrescriptionRuleError`` naming the bad field. Item fields are
addressed from zero: ``items[0].quantity`` is the first item's quantity.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_protocol.errors import ProtocolError

from .catalogue import Catalogue, CatalogueError, Drug, UnknownDrug

logger = logging.getLogger(__name__)

__all__ = [
    "ItemRequest", "PaperDispenseRule", "PlannedItem", "PrescriptionPlan", "PrescriptionRuleError",
    "check_prescription", "dispense_rule_for_paper", "max_validity_days",
    "requires_e_prescription",
]

# MoH e-prescription rules: at most five medicines on one prescription; more needs a medical
# board (konsilium) decision, which is not taken at a clinic workstation.
MAX_ITEMS_PER_PRESCRIPTION = 5
# 90 days at four units a day is 360; anything above is a typing slip (3600 for 360).
MAX_QUANTITY_PER_FILL = 360
# Weekly repeats across the longest (90-day) chronic window: 12 repeats after the first fill.
MAX_REPEATS = 12
# A repeat is at least a week's supply; shorter intervals would hand out a chronic supply in days.
MIN_DAYS_BETWEEN_FILLS = 7
# The dosage line must fit the printed prescription and the QR payload.
MAX_DOSAGE_CHARS = 200


class PrescriptionRuleError(ProtocolError):
    """A prescription that breaks a rule. ``field`` says which input, ``code`` which rule."""

    code = "prescription_rule"


def _fail(field: str, code: str, message: str, **params: Any) -> PrescriptionRuleError:
    return PrescriptionRuleError(message, field=field, code=code, **params)


@dataclass(frozen=True)
class ItemRequest:
    """One line of a prescription as the doctor entered it."""

    inn: str
    form: str
    strength: str
    quantity: int  # units per fill, counted in the form's unit (tablets, bottles, pens...)
    dosage: str  # "1 tablet twice a day for 7 days", in the doctor's language
    repeats: int = 0  # FHIR numberOfRepeatsAllowed: fills after the first one
    min_days_between_fills: int | None = None  # required when repeats > 0


@dataclass(frozen=True)
class PlannedItem:
    """A checked item, spelled as the catalogue spells it."""

    inn: str
    form: str
    strength: str
    unit: str
    atc: str
    quantity: int
    dosage: str
    repeats: int
    min_days_between_fills: int | None
    requires_e_prescription: bool
    max_validity_days: int  # this item's own cap, for the patient's chronic status


@dataclass(frozen=True)
class PrescriptionPlan:
    items: tuple[PlannedItem, ...]
    chronic: bool  # the patient's chronic conditions applied
    not_before: datetime  # UTC; the issue instant
    expires_at: datetime  # UTC; not_before + validity_days
    validity_days: int
    max_validity_days: int  # the longest window the rules allowed
    limited_by: str  # INN of the item that set max_validity_days (a hint to split the script)
    requires_e_prescription: bool  # at least one item is on the e-prescription lists


@dataclass(frozen=True)
class PaperDispenseRule:
    """How a drug may be handed over without an e-prescription (for the paper path)."""

    inn: str
    needs_prescription: bool  # False for OTC drugs
    # Normal operation forbids handing this drug over without an e-prescription.
    forbidden_without_e_prescription: bool
    # The outage/emergency paper path may record a dispense (to be reconciled later).
    paper_path_allowed: bool
    code: str  # no_prescription_needed | paper_prescription_ok | e_prescription_required |
    #            special_form_only
    message: str  # English msgid with %(inn)s

    @property
    def text(self) -> str:
        return self.message % {"inn": self.inn}


def requires_e_prescription(drug: Drug) -> bool:
    """True when the drug may be dispensed only on an e-prescription (normal operation)."""
    return drug.e_prescribable and (drug.requires_e_prescription or drug.antibacterial
                                    or drug.hormonal or drug.psychotropic_or_potent)


def max_validity_days(drug: Drug, chronic: bool) -> int:
    """The longest validity for this drug: the chronic maximum for a chronic patient when the
    drug has one, else the default window."""
    if not drug.e_prescribable or drug.default_validity_days is None:
        raise _not_e_prescribable(drug, "inn")
    if chronic and drug.chronic_max_days is not None:
        return drug.chronic_max_days
    return drug.default_validity_days


def dispense_rule_for_paper(drug: Drug) -> PaperDispenseRule:
    if not drug.e_prescribable:
        return PaperDispenseRule(
            drug.inn, True, True, False, "special_form_only",
            "%(inn)s is a narcotic drug or an anaesthesia agent: it is dispensed only on the "
            "special prescription form under narcotic control, never through this system")
    if requires_e_prescription(drug):
        return PaperDispenseRule(
            drug.inn, True, True, True, "e_prescription_required",
            "%(inn)s requires an e-prescription; a paper prescription is accepted only during a "
            "technical failure or an emergency and must be reconciled with DMED")
    if drug.otc:
        return PaperDispenseRule(drug.inn, False, False, True, "no_prescription_needed",
                                 "%(inn)s is sold without a prescription")
    return PaperDispenseRule(drug.inn, True, False, True, "paper_prescription_ok",
                             "%(inn)s is prescription-only; a paper prescription is accepted")


def check_prescription(items: Sequence[ItemRequest], catalogue: Catalogue,
                       chronic_conditions_apply: bool, issued_at: datetime, *,
                       validity_days: int | None = None) -> PrescriptionPlan:
    """Check a whole prescription and compute its validity window.

    ``validity_days`` lets the doctor choose a shorter window; by default the longest the rules
    allow: the minimum over items of each item's ``max_validity_days``.
    Raises PrescriptionRuleError on the first broken rule; nothing is changed either way.
    """
    if not isinstance(issued_at, datetime) or issued_at.utcoffset() is None:
        raise _fail("issued_at", "issued_at_naive",
                    "The issue time must be a timezone-aware datetime")
    chronic = bool(chronic_conditions_apply)
    items = tuple(items)
    if not items:
        raise _fail("items", "no_items", "A prescription needs at least one item")
    if len(items) > MAX_ITEMS_PER_PRESCRIPTION:
        raise _fail("items", "too_many_items", "A prescription holds at most %(max)s items, "
                    "%(count)s were given; more need a medical board decision",
                    max=MAX_ITEMS_PER_PRESCRIPTION, count=len(items))
    seen: dict[str, int] = {}  # INN -> index of its line
    planned: list[PlannedItem] = []
    for i, item in enumerate(items):
        drug, planned_item = _check_item(i, item, catalogue, chronic)
        if drug.inn in seen:
            raise _fail(f"items[{i}].inn", "duplicate_inn", "%(inn)s is already line "
                        "%(line)s; merge the two lines", inn=drug.inn, line=seen[drug.inn] + 1)
        seen[drug.inn] = i
        planned.append(planned_item)

    cap_item = min(planned, key=lambda p: p.max_validity_days)
    cap = cap_item.max_validity_days
    if validity_days is None:
        days = cap
    elif type(validity_days) is not int or validity_days < 1:
        raise _fail("validity_days", "validity_invalid",
                    "The validity must be a whole number of days, at least 1")
    elif validity_days > cap:
        raise _fail("validity_days", "validity_exceeds_maximum", "The validity can be at most "
                    "%(max)s days (set by %(inn)s)", max=cap, inn=cap_item.inn)
    else:
        days = validity_days

    for i, p in enumerate(planned):
        if p.repeats and p.repeats * (p.min_days_between_fills or 0) >= days:
            raise _fail(f"items[{i}].repeats", "repeats_exceed_validity",
                        "%(repeats)s repeats %(interval)s days apart cannot all be collected "
                        "within the %(days)s-day validity", repeats=p.repeats,
                        interval=p.min_days_between_fills, days=days)

    not_before = issued_at.astimezone(UTC)
    plan = PrescriptionPlan(
        items=tuple(planned), chronic=chronic, not_before=not_before,
        expires_at=not_before + timedelta(days=days), validity_days=days, max_validity_days=cap,
        limited_by=cap_item.inn,
        requires_e_prescription=any(p.requires_e_prescription for p in planned))
    logger.debug("Prescription plan: %s items, %s days (cap %s by %s)", len(planned), days, cap,
                 cap_item.inn)
    return plan


def _not_e_prescribable(drug: Drug, field: str) -> PrescriptionRuleError:
    if drug.narcotic:
        return _fail(field, "narcotic_not_e_prescribable", "%(inn)s is a narcotic drug and "
                     "cannot be prescribed electronically; use the special paper form",
                     inn=drug.inn)
    return _fail(field, "anaesthetic_not_e_prescribable", "%(inn)s is an anaesthesia agent for "
                 "use in medical organisations and cannot be prescribed electronically",
                 inn=drug.inn)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_item(i: int, item: ItemRequest, catalogue: Catalogue,
                chronic: bool) -> tuple[Drug, PlannedItem]:
    at = f"items[{i}]"
    try:
        drug = catalogue.get(item.inn)
    except UnknownDrug as e:
        raise _fail(f"{at}.inn", e.code, e.message, **e.params) from e
    if not drug.e_prescribable:
        raise _not_e_prescribable(drug, f"{at}.inn")
    try:
        presentation = catalogue.validate_form_strength(drug.inn, item.form, item.strength)
    except CatalogueError as e:
        raise _fail(f"{at}.{e.field}", e.code, e.message, **e.params) from e

    quantity = item.quantity
    if not _is_int(quantity):
        raise _fail(f"{at}.quantity", "quantity_invalid", "The quantity must be a whole number")
    if quantity < 1:
        raise _fail(f"{at}.quantity", "quantity_not_positive", "The quantity must be at least 1")
    if quantity > MAX_QUANTITY_PER_FILL:
        raise _fail(f"{at}.quantity", "quantity_too_large", "The quantity can be at most "
                    "%(max)s %(unit)s per fill", max=MAX_QUANTITY_PER_FILL,
                    unit=presentation.form.unit)

    dosage = item.dosage.strip() if isinstance(item.dosage, str) else ""
    if not dosage:
        raise _fail(f"{at}.dosage", "dosage_missing", "Write how to take %(inn)s", inn=drug.inn)
    if len(dosage) > MAX_DOSAGE_CHARS:
        raise _fail(f"{at}.dosage", "dosage_too_long", "The dosage can be at most %(max)s "
                    "characters", max=MAX_DOSAGE_CHARS)
    if any(unicodedata.category(c).startswith("C") for c in dosage):
        raise _fail(f"{at}.dosage", "dosage_invalid",
                    "The dosage must be one line of printable text")

    repeats, interval = item.repeats, item.min_days_between_fills
    _check_repeats(at, drug, chronic, repeats, interval)
    return drug, PlannedItem(
        inn=drug.inn, form=presentation.form.form, strength=presentation.strength,
        unit=presentation.form.unit, atc=presentation.form.atc, quantity=quantity, dosage=dosage,
        repeats=repeats, min_days_between_fills=interval or None,
        requires_e_prescription=requires_e_prescription(drug),
        max_validity_days=max_validity_days(drug, chronic))


def _check_repeats(at: str, drug: Drug, chronic: bool, repeats: Any, interval: Any) -> None:
    if not _is_int(repeats) or repeats < 0:
        raise _fail(f"{at}.repeats", "repeats_invalid",
                    "Repeats must be a whole number, 0 or more")
    if repeats > MAX_REPEATS:
        raise _fail(f"{at}.repeats", "repeats_too_many", "At most %(max)s repeats are allowed",
                    max=MAX_REPEATS)
    if repeats == 0:
        if interval not in (None, 0):
            raise _fail(f"{at}.min_days_between_fills", "interval_without_repeats",
                        "Days between fills only apply when repeats are allowed")
        return
    if not chronic:
        raise _fail(f"{at}.repeats", "repeats_need_chronic_patient",
                    "Repeats are only for patients with chronic conditions")
    if not drug.chronic_eligible:
        raise _fail(f"{at}.repeats", "repeats_not_chronic_eligible",
                    "%(inn)s is not eligible for chronic repeats", inn=drug.inn)
    if interval is None:
        raise _fail(f"{at}.min_days_between_fills", "interval_missing",
                    "Give the minimum days between fills for repeats")
    if not _is_int(interval):
        raise _fail(f"{at}.min_days_between_fills", "interval_invalid",
                    "Days between fills must be a whole number")
    if interval < MIN_DAYS_BETWEEN_FILLS:
        raise _fail(f"{at}.min_days_between_fills", "interval_too_short",
                    "Fills must be at least %(min)s days apart", min=MIN_DAYS_BETWEEN_FILLS)
