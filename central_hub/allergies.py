"""The hub's projection of allergies and intolerances on patients' medical cards.

Recorded at any clinic, retracted when entered in error. A retraction may be stored before
the record it retracts (nodes push in their own order), so retractions are kept by id and a
record arriving later is born retracted: the same state in any order, and after a rebuild.
"""

from __future__ import annotations

import logging

from sync_protocol.event_names import ALLERGY_RECORDED, ALLERGY_RETRACTED
from sync_protocol.events import Event

from .projections import BatchHook
from .rights import HUB_ORIGIN
from .routing import row_event
from .storage import Migration, Storage, Tx

log = logging.getLogger(__name__)

COMPONENT = "allergies"
ALLERGY_TYPES = frozenset({ALLERGY_RECORDED, ALLERGY_RETRACTED})
TABLES = ("hub_allergies", "hub_allergy_retractions")

ALLERGIES_V1 = """
CREATE TABLE hub_allergies (
    allergy_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, kind TEXT NOT NULL,
    substance_type TEXT NOT NULL, substance TEXT NOT NULL, reaction TEXT NOT NULL,
    severity TEXT, recorded_at TEXT NOT NULL, recorded_by TEXT, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, retracted_at TEXT, retract_reason TEXT
);
CREATE INDEX hub_allergies_by_patient ON hub_allergies (patient_id);
CREATE TABLE hub_allergy_retractions (
    allergy_id TEXT PRIMARY KEY, retracted_at TEXT NOT NULL, reason TEXT NOT NULL,
    hlc TEXT NOT NULL, origin TEXT NOT NULL
)
"""
MIGRATIONS = (Migration(COMPONENT, 1, ALLERGIES_V1),)  # listed by central_hub.composition


class AllergyHook(BatchHook):
    """Keeps hub_allergies; runs after the projections (it needs nothing of theirs)."""

    types = ALLERGY_TYPES

    def apply(self, tx: Tx, events: list[Event]) -> None:
        touched = set()
        for e in events:
            p = e.payload
            touched.add(p["allergy_id"])
            if e.type == ALLERGY_RECORDED:
                tx.execute(
                    "INSERT INTO hub_allergies (allergy_id, patient_id, kind, substance_type,"
                    " substance, reaction, severity, recorded_at, recorded_by, hlc, origin)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (allergy_id)"
                    " DO NOTHING",
                    (p["allergy_id"], p["patient_id"], p["kind"], p["substance_type"],
                     p["substance"], p["reaction"], p.get("severity"), p["recorded_at"],
                     p.get("practitioner_id"), e.hlc, e.origin))
            else:
                # Retracted twice: the earlier clock's reason stands, as on the nodes.
                tx.execute(
                    "INSERT INTO hub_allergy_retractions (allergy_id, retracted_at, reason, hlc,"
                    " origin) VALUES (?, ?, ?, ?, ?) ON CONFLICT (allergy_id) DO UPDATE SET"
                    " retracted_at = excluded.retracted_at, reason = excluded.reason,"
                    " hlc = excluded.hlc, origin = excluded.origin WHERE (excluded.hlc,"
                    " excluded.origin) < (hub_allergy_retractions.hlc,"
                    " hub_allergy_retractions.origin)",
                    (p["allergy_id"], p["retracted_at"], p["reason"], e.hlc, e.origin))
        for allergy_id in sorted(touched):
            tx.execute(
                "UPDATE hub_allergies SET retracted_at = r.retracted_at, retract_reason ="
                " r.reason FROM hub_allergy_retractions r WHERE r.allergy_id ="
                " hub_allergies.allergy_id AND hub_allergies.allergy_id = ?", (allergy_id,))


def rebuild_allergies(storage: Storage) -> int:
    """Empty the allergy tables and apply every allergy event again; return the count."""
    with storage.transaction() as tx:
        tx.hold_writer_lock()
        for table in TABLES:
            tx.execute(f"DELETE FROM {table}")  # noqa: S608 - names are code constants
        rows = tx.query("SELECT * FROM events WHERE type IN (?, ?) AND origin <> ? ORDER BY"
                        " position", (*sorted(ALLERGY_TYPES), HUB_ORIGIN))
        AllergyHook().apply(tx, [row_event(r) for r in rows])
    return len(rows)


def patient_allergies(tx: Tx, patient_id: str) -> list[dict]:
    """A patient's allergies known at the hub, retracted ones included (with the reason)."""
    return [dict(r) for r in tx.query("SELECT * FROM hub_allergies WHERE patient_id = ?"
                                      " ORDER BY recorded_at, allergy_id", (patient_id,))]
