"""What the doctor sees about a drug while choosing it: the e-prescription badge, the validity
(chronic or not) and a clear refusal for drugs that can never be e-prescribed.

The words come from the same rules the service applies on submit (prescribing_rules), so the
screen never promises what signing would refuse.
"""

from __future__ import annotations

import logging

from flask_babel import gettext

from edge_node.catalogue import Catalogue, Drug
from edge_node.prescribing_rules import (
    MAX_ITEMS_PER_PRESCRIPTION,
    PrescriptionRuleError,
    max_validity_days,
    requires_e_prescription,
)

from .common import error_text

log = logging.getLogger(__name__)

MAX_ITEMS = MAX_ITEMS_PER_PRESCRIPTION
SUGGESTIONS = 8  # what fits under the INN box without scrolling


def catalogue() -> Catalogue:
    return Catalogue.load()


def find_drug(inn: str) -> Drug | None:
    """The catalogue's drug when ``inn`` names one exactly, else None (still being typed)."""
    cat = catalogue()
    return cat.get(inn) if inn and inn in cat else None


def refusal(drug: Drug) -> str | None:
    """Why this drug cannot be on an e-prescription (narcotics, anaesthesia agents), or None."""
    try:
        max_validity_days(drug, False)
    except PrescriptionRuleError as e:
        return error_text(e)
    return None


def badges(drug: Drug, chronic: bool) -> list[dict]:
    """Short rules for a drug, each {"tone", "text"}; tone ok / warn / bad."""
    why_not = refusal(drug)
    if why_not:
        return [{"tone": "bad", "text": why_not}]
    found = []
    if requires_e_prescription(drug):
        found.append({"tone": "warn", "text": gettext("E-prescription required")})
    days = max_validity_days(drug, chronic)
    if chronic and drug.chronic_max_days:
        found.append({"tone": "ok", "text": gettext(
            "Chronic patient: valid up to %(days)s days", days=days)})
    else:
        found.append({"tone": "ok", "text": gettext("Valid %(days)s days", days=days)})
        if drug.chronic_max_days:
            found.append({"tone": "info", "text": gettext(
                "Up to %(days)s days for a chronic patient", days=drug.chronic_max_days)})
    return found


def suggestions(text: str, lang: str, chronic: bool) -> list[dict]:
    """Autocomplete rows for the INN box: INN, name in the reader's language, rules."""
    drugs = catalogue().search(text[:100], lang=lang, limit=SUGGESTIONS) if text.strip() else []
    return [{"inn": d.inn, "name": d.name(lang), "badges": badges(d, chronic),
             "refused": refusal(d) is not None} for d in drugs]


def validity_cap(inns: list[str], chronic: bool) -> int | None:
    """The longest validity the chosen drugs allow together (the shortest of their caps)."""
    caps = []
    for inn in inns:
        drug = find_drug(inn)
        if drug is not None and refusal(drug) is None:
            caps.append(max_validity_days(drug, chronic))
    return min(caps) if caps else None
