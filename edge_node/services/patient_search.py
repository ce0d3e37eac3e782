"""The registry desk's patient search: one box that takes a PINFL, an identity document, an
MRZ read from the card, a birth date, or part of a name in Latin or Cyrillic."""

from __future__ import annotations

import logging
import re
from datetime import date

from sync_protocol.identifiers import (
    DOCUMENT_PATTERN,
    latin_lookalikes,
    parse_document,
    parse_pinfl,
)
from sync_protocol.mrz import MAX_MRZ_TEXT, looks_like_mrz, parse_mrz
from sync_protocol.names import name_key, name_matches

from ..errors import NotFound, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .patients import find_patient, get_summary, patient_summary
from .records import PatientSummary

log = logging.getLogger(__name__)

# A page of results: a name common enough to match more asks the registrar to type more.
MAX_RESULTS = 50
MIN_NAME_KEY = 2  # one letter would list every patient
MAX_QUERY = MAX_MRZ_TEXT
DATE_FORMATS = (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),  # 1990-05-17 (ISO, date inputs)
                re.compile(r"^(\d{2})[./](\d{2})[./](\d{4})$"))  # 17.05.1990 (as printed)


def read_birth_date(text: str) -> date | None:
    for i, pattern in enumerate(DATE_FORMATS):
        match = pattern.match(text)
        if match:
            parts = [int(g) for g in match.groups()]
            year, month, day = parts if i == 0 else parts[::-1]
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def identifier_of(query: str) -> dict | None:
    """{"pinfl": ...} or {"document": ...} when the query is one (an MRZ gives both)."""
    if read_birth_date(query):
        return None
    if looks_like_mrz(query):
        data = parse_mrz(query)
        return {"pinfl": data.pinfl, "document": data.document}
    compact = re.sub(r"[\s-]", "", query)
    if compact.isdigit():
        return {"pinfl": parse_pinfl(compact).digits}
    if DOCUMENT_PATTERN.match(latin_lookalikes(compact)):
        return {"document": str(parse_document(compact))}
    return None


def search_patients(store: NodeStore, actor: Actor, query: str) -> list[PatientSummary]:
    """Patients matching the query, at most MAX_RESULTS, by name then birth date."""
    actor.require("view_patient")
    text = " ".join(str(query or "").split())[:MAX_QUERY]
    if not text:
        raise ValidationFailed("Type a PINFL, a document, a birth date or a name", field="q")
    born = read_birth_date(text)
    if born is not None:
        rows = store.query("SELECT * FROM patients WHERE birth_date = ? ORDER BY full_name"
                           " LIMIT ?", (born.isoformat(), MAX_RESULTS))
        return [patient_summary(r) for r in rows]
    ids = identifier_of(text)
    if ids:
        # An MRZ gives both: a patient registered by PINFL alone is still found.
        missing: NotFound | None = None
        for key in ("pinfl", "document"):
            if ids.get(key):
                try:
                    return [find_patient(store, actor, **{key: ids[key]})]
                except NotFound as e:
                    missing = e
        raise missing or NotFound("No patient with this identifier on this node", field="q")
    if len(name_key(text).replace(" ", "")) < MIN_NAME_KEY:
        raise ValidationFailed("Type at least %(count)s letters of the name", field="q",
                               count=MIN_NAME_KEY)
    # SQLite narrows by the longest word in the stored Latin key (a LIKE over one column);
    # Python then checks every word as a word prefix. Rows not yet keyed are checked too.
    longest = max(name_key(text).split(), key=len)
    found = []
    for row in store.query("SELECT patient_id, full_name FROM patients WHERE name_key LIKE ?"
                           " OR name_key IS NULL ORDER BY full_name", (f"%{longest}%",)):
        if name_matches(text, row["full_name"]):
            found.append(row["patient_id"])
            if len(found) == MAX_RESULTS:
                break
    return [get_summary(store, pid) for pid in found]
