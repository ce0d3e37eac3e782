"""Numbered schema migrations of the hub database, for SQLite and PostgreSQL alike.

Each migration is one script written once for both databases; the few types that differ are
placeholders filled per dialect (TYPES). Migrations are grouped by component ("core" here;
each domain module defines its own), listed in order by central_hub.composition, applied in
that order and then by number (Storage.migrate), and recorded in `schema_migrations`. A
released migration is never edited: hubs in the field already ran it. Add a new number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .base import POSTGRESQL, SQLITE, Tx
from .partitions import partition_log

log = logging.getLogger(__name__)

TYPES = {
    SQLITE: {
        # INTEGER PRIMARY KEY is SQLite's rowid: no second index. The hub assigns the value.
        "position_pk": "INTEGER PRIMARY KEY",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "json": "TEXT",
    },
    POSTGRESQL: {
        "position_pk": "BIGINT PRIMARY KEY",
        "serial_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "json": "JSONB",
    },
}

CORE_V1 = """
-- The global event log. position: the hub's order, assigned under the writer lock with no
-- gaps. The scope columns are derived at ingest (central_hub.scope), never sent by nodes.
CREATE TABLE events (
    position {position_pk},
    id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hlc TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload {json} NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    received_at TEXT NOT NULL,
    facility_id TEXT,
    region TEXT,
    patient_id TEXT,
    subject_id TEXT,
    UNIQUE (origin, seq)
);
CREATE INDEX events_by_patient ON events (patient_id, position);
CREATE INDEX events_by_subject ON events (subject_id, position);
CREATE INDEX events_by_facility ON events (facility_id, position);
CREATE INDEX events_by_type ON events (type, position);

-- What each node may pull: one row per (event, audience), in the order rows were added.
-- A pull walks this feed by id. An audience learnt later (a patient transferred, a
-- prescription arriving after its dispense) gets the old event as a new row.
CREATE TABLE deliveries (
    id {position_pk},
    position BIGINT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    until TEXT,
    UNIQUE (position, target_kind, target)
);
CREATE INDEX deliveries_by_target ON deliveries (target_kind, target, id);

-- The small indexes routing needs: which facility, patient and region an id belongs to.
CREATE TABLE scope_facilities (
    facility_id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE INDEX scope_facilities_by_code ON scope_facilities (code);
CREATE TABLE scope_subjects (
    subject_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    patient_id TEXT,
    facility_id TEXT,
    region TEXT,
    until TEXT
);
CREATE TABLE scope_attachments (
    patient_id TEXT PRIMARY KEY,
    facility_id TEXT NOT NULL,
    hlc TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE TABLE scope_links (
    patient_id TEXT NOT NULL,
    facility_id TEXT NOT NULL,
    PRIMARY KEY (patient_id, facility_id)
);

-- Every node that ever made an authenticated request, with its sync state. acked_seq and
-- head_hash are the head of the node's own chain as the hub holds it.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    facility_code TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    cert_kid TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_push_at TEXT,
    last_pull_at TEXT,
    synced_at TEXT,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    head_hash TEXT NOT NULL,
    last_cursor BIGINT NOT NULL DEFAULT 0,
    pushed_events BIGINT NOT NULL DEFAULT 0,
    pulled_events BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_code TEXT,
    last_error_at TEXT,
    flag TEXT
);

CREATE TABLE nonces (
    node_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Refused events, kept and shown (DESIGN 7.11). One row per (pusher, event, reason), a
-- resend counts attempts. chained = 1: the event holds its place in its origin's chain.
CREATE TABLE quarantine (
    id {serial_pk},
    node_id TEXT NOT NULL,
    event_id TEXT,
    origin TEXT,
    seq BIGINT,
    hash TEXT,
    type TEXT,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    digest TEXT NOT NULL,
    chained INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT,
    UNIQUE (node_id, digest, code)
);
CREATE INDEX quarantine_by_chain ON quarantine (origin, seq);
CREATE INDEX quarantine_by_event ON quarantine (event_id);

-- Two devices presenting one node identity (DESIGN 7.10): the hub held one event at a seq
-- and was shown another.
CREATE TABLE identity_conflicts (
    id {serial_pk},
    node_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    held_id TEXT,
    held_hash TEXT NOT NULL,
    presented_id TEXT,
    presented_hash TEXT NOT NULL,
    presented_kid TEXT,
    detected_at TEXT NOT NULL,
    UNIQUE (node_id, seq, presented_hash)
);

CREATE TABLE hub_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    script: str  # statements separated by ";", types as {placeholders} (see TYPES)
    # Run after the script, in its transaction: a step that depends on what the database
    # holds (it checks the dialect itself).
    apply: Callable[[Tx], None] | None = None

    def statements(self, dialect: str) -> list[str]:
        text = self.script.format(**TYPES[dialect])
        # Comment lines go first, so a ";" in a comment cannot split a statement.
        text = "\n".join(line for line in text.splitlines()
                         if not line.strip().startswith("--"))
        return [s.strip() for s in text.split(";") if s.strip()]


# Every accepted event updates each index of `events`: keep only those a query reads. Nothing
# looks events up by facility, and by type only the call centre's list of remote requests.
CORE_V2 = """
DROP INDEX events_by_facility;
DROP INDEX events_by_type;
CREATE INDEX events_remote_requests ON events (position)
    WHERE type = 'RemotePrescriptionRequested'
"""

# The projector's cursor (central_hub.ingest): every node event up to this position has been
# through the ingest hooks. Until now they ran in the storing transaction: all of the log.
CORE_V3 = """
INSERT INTO hub_state (key, value, updated_at)
    SELECT 'projected_through', CAST(COALESCE(MAX(position), 0) AS TEXT), '1970-01-01T00:00:00Z'
    FROM events
"""

# Time partitioning of `events` and `deliveries` on PostgreSQL (central_hub.storage.partitions);
# nothing changes on SQLite.
CORE_V4 = ""

# The core component; central_hub.composition lists it first, then every other one.
CORE: tuple[Migration, ...] = (Migration("core", 1, CORE_V1), Migration("core", 2, CORE_V2),
                               Migration("core", 3, CORE_V3),
                               Migration("core", 4, CORE_V4, partition_log))

Component = tuple[Migration, ...]  # one component's migrations, numbered 1, 2, ... in order


def check_components(components: Sequence[Component]) -> tuple[Component, ...]:
    """The components as given, once each is known to be numbered 1, 2, ... in order."""
    seen: set[str] = set()
    for migrations in components:
        if not migrations:
            raise ValueError("a migration component needs at least one migration")
        name = migrations[0].component
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)) or any(
                m.component != name for m in migrations):
            raise ValueError(f"migrations of {name} must be numbered 1, 2, ... in order")
        if name in seen:
            raise ValueError(f"migration component {name} is listed twice")
        seen.add(name)
    return tuple(components)


def latest_versions(components: Sequence[Component]) -> dict[str, int]:
    return {migrations[0].component: migrations[-1].version for migrations in components}
