"""How the hub is assembled, in one place and in order: its database's migration components,
the ingest hooks every stored event goes through, the conflict detectors, and the tables a
snapshot compares with a node's.

Nothing registers itself on import: the app factory, the CLI and the tests take these lists
from here, so what the hub is does not depend on which module was imported first (as Home
Assistant's recorder lists its migration steps in one module). A released migration is never
edited or moved: a hub in the field applies the components in this order, each by number.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from . import (
    allergies,
    claims,
    conflicts,
    monitoring,
    paper,
    projections,
    reconciliation,
    refusals,
    snapshots,
    staff,
)
from .fhir import schema as fhir_schema
from .ingest import Hook
from .snapshots import SnapshotTable
from .storage import Component, Storage, Tx
from .storage import open_storage as open_with
from .storage.migrations import CORE

log = logging.getLogger(__name__)

# The migration components, applied in this order (each then by number). New components go
# at the end; a later one may build on the tables of those before it (fhir's indexes are on
# the projections' tables).
MIGRATIONS: tuple[Component, ...] = (
    CORE,                    # the global log, deliveries, scope indexes, nodes, quarantine
    projections.MIGRATIONS,  # hub_patients, slots, appointments, prescriptions, dispenses
    allergies.MIGRATIONS,    # hub_allergies
    conflicts.MIGRATIONS,    # hub_conflicts and their events, facilities and reviews
    monitoring.MIGRATIONS,   # sync attempts and hourly counts for the fleet pages
    refusals.MIGRATIONS,     # refused requests by claimed node, address and reason
    claims.MIGRATIONS,       # hub_claims: online dispensing prevented
    paper.MIGRATIONS,        # pads, sync contacts, paper reconciliation state
    staff.MIGRATIONS,        # central staff accounts and sessions
    fhir_schema.MIGRATIONS,  # FHIR clients, tokens, audit, exports
)

# The conflict detectors, run in this order over each projected batch (central_hub.conflicts).
CONFLICT_DETECTORS: tuple[conflicts.Detector, ...] = (
    conflicts.dispense_conflicts,  # over-dispensing, dispense after cancel / expiry / revocation
    conflicts.double_bookings,     # two claims of one slot
    conflicts.patient_field_edits,  # concurrent edits of one patient field
)

# The shared tables a snapshot compares with a node's, in the node's names.
SNAPSHOT_TABLES: tuple[SnapshotTable, ...] = (*projections.SNAPSHOT_TABLES,
                                              conflicts.SNAPSHOT_TABLE)


def ingest_hooks() -> list[Hook]:
    """The hub's own ingest hooks, fresh (they keep per-instance caches), in the order they
    must run: projections first (the others read them), then allergies, conflicts, and paper
    reconciliation (it keeps state across batches, so it is a hook, not a detector)."""
    return [projections.ProjectionHook(), allergies.AllergyHook(),
            conflicts.ConflictHook(CONFLICT_DETECTORS), reconciliation.on_accepted]


def open_storage(url: str | Path, *, migrate: bool = True) -> Storage:
    """Open the hub database named by `url`, migrated (unless `migrate` is False) to
    MIGRATIONS; a storage opened with `migrate=False` still migrates on `.migrate()`."""
    return open_with(url, components=MIGRATIONS, migrate=migrate)


def snapshot(source: Storage | Tx, facility_id: str | None = None) -> dict[str, list[dict]]:
    """The shared records the hub holds (of one facility, if given): central_hub.snapshots."""
    return snapshots.snapshot(source, SNAPSHOT_TABLES, facility_id)


def diff_snapshots(hub: dict[str, list[dict]], node: dict[str, list[dict]], *,
                   complete: bool = False,
                   tables: Sequence[SnapshotTable] = SNAPSHOT_TABLES) -> list[str]:
    """What differs between a hub snapshot and a node's (central_hub.snapshots)."""
    return snapshots.diff_snapshots(hub, node, tables, complete=complete)
