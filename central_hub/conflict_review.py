"""Conflict review for central staff: list conflicts with every event involved, acknowledge
and resolve them (DESIGN 4.4: found, kept and shown, never silently resolved).

A state change is a hub event (ConflictStateChanged), routed like the ConflictRaised it
follows, so the nodes involved see who reviewed it and why. The JSON API on it is
central_hub.web.api_conflicts; the staff pages are central_hub.web.dashboard_pages.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_protocol.conflicts import (
    ACKNOWLEDGED,
    OPEN,
    RESOLVED,
    STATES,
    may_change,
)
from sync_protocol.event_names import CONFLICT_STATE_CHANGED
from sync_protocol.event_types import CONFLICT_KINDS
from sync_protocol.payloads import conflict_state_changed
from sync_protocol.timeutil import to_instant, utc_now

from .errors import HubError, NotFound
from .hub_events import emit_hub_event
from .storage import Storage, Tx

log = logging.getLogger(__name__)

ACTIONS = {"acknowledge": ACKNOWLEDGED, "resolve": RESOLVED}
# The ConflictStateChanged schema: by is a NAME (200), note a TEXT (4000).
MAX_BY = 200
MAX_NOTE = 4000
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# Payload fields too large or too personal for a list line.
SUMMARY_SKIP = frozenset({"qr", "starts", "items", "details", "payload"})


class ConflictNotFound(NotFound):
    code = "conflict_not_found"


class ConflictStateError(HubError):
    code = "conflict_state"
    http_status = 409


def change_state(storage: Storage, conflict_id: str, state: str, *, by: Any,
                 note: Any) -> dict[str, Any]:
    """Acknowledge or resolve a conflict: emit ConflictStateChanged, record who and why."""
    by_text = by.strip() if isinstance(by, str) else ""
    note_text = note.strip() if isinstance(note, str) else ""
    if not by_text or len(by_text) > MAX_BY:
        raise HubError("Say who reviews the conflict (1 to %(max)s characters)", field="by",
                       code="by_required", max=MAX_BY)
    if not note_text or len(note_text) > MAX_NOTE:
        raise HubError("A note saying why is required (1 to %(max)s characters)", field="note",
                       code="note_required", max=MAX_NOTE)
    with storage.transaction() as tx:
        row = tx.one("SELECT * FROM hub_conflicts WHERE conflict_id = ?", (conflict_id,))
        if row is None:
            raise ConflictNotFound("No conflict %(id)s", field="conflict_id", id=conflict_id)
        if not may_change(row["state"], state):
            raise ConflictStateError("Conflict %(id)s is %(state)s already; it cannot become "
                                     "%(new)s", field="state", id=conflict_id,
                                     state=row["state"], new=state)
        stored = emit_hub_event(tx, CONFLICT_STATE_CHANGED, conflict_state_changed(
            conflict_id=conflict_id, state=state, by=by_text, note=note_text),
            after_hlc=row["raised_hlc"])
        changed_at = stored.event.timestamp.to_instant()
        tx.execute("UPDATE hub_conflicts SET state = ?, state_changed_at = ?, "
                   "state_changed_by = ?, note = ? WHERE conflict_id = ?",
                   (state, changed_at, by_text, note_text, conflict_id))
        tx.execute("INSERT INTO hub_conflict_reviews (conflict_id, state, reviewed_by, note, "
                   "changed_at, event_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (conflict_id, state, by_text, note_text, changed_at, stored.event.id,
                    to_instant(utc_now())))
    log.info("conflict %s %s by %s", conflict_id, state, by_text)
    return get_conflict(storage, conflict_id)


def list_conflicts(storage: Storage, *, state: str | None = None, kind: str | None = None,
                   facility: str | None = None, limit: int = DEFAULT_LIMIT,
                   before: int | None = None) -> list[dict[str, Any]]:
    """Conflicts, newest first, each with its events, facilities and reviews."""
    if state is not None and state not in STATES:
        raise HubError("State must be one of %(states)s", field="state",
                       states=", ".join(STATES))
    if kind is not None and kind not in CONFLICT_KINDS:
        raise HubError("Kind must be one of %(kinds)s", field="kind",
                       kinds=", ".join(CONFLICT_KINDS))
    where, params = ["1 = 1"], []
    for column, value in (("state", state), ("kind", kind)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if facility:
        where.append("conflict_id IN (SELECT conflict_id FROM hub_conflict_facilities WHERE "
                     "facility_id = ?)")
        params.append(facility)
    if before:
        where.append("raised_position < ?")
        params.append(before)
    with storage.reader() as tx:
        rows = tx.query(f"SELECT * FROM hub_conflicts WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
                        "ORDER BY raised_position DESC LIMIT ?",
                        (*params, max(1, min(limit, MAX_LIMIT))))
        return _expand(tx, rows)


def open_by_kind(storage: Storage) -> dict[str, int]:
    """How many conflicts wait for review, per kind (counted in the database)."""
    with storage.reader() as tx:
        return {row["kind"]: int(row["n"]) for row in tx.query(
            "SELECT kind, COUNT(*) AS n FROM hub_conflicts WHERE state = ? GROUP BY kind",
            (OPEN,))}


def get_conflict(storage: Storage, conflict_id: str) -> dict[str, Any]:
    with storage.reader() as tx:
        rows = tx.query("SELECT * FROM hub_conflicts WHERE conflict_id = ?", (conflict_id,))
        if not rows:
            raise ConflictNotFound("No conflict %(id)s", field="conflict_id", id=conflict_id)
        return _expand(tx, rows)[0]


def get_conflicts(tx: Tx, conflict_ids: list[str]) -> list[dict[str, Any]]:
    """Conflicts by id, in the order asked (unknown ids are left out), read in one go."""
    rows = {r["conflict_id"]: r for r in tx.query_in(
        "SELECT * FROM hub_conflicts WHERE conflict_id IN ({ids})", conflict_ids)}
    return _expand(tx, [rows[i] for i in conflict_ids if i in rows])


def _expand(tx: Tx, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [r["conflict_id"] for r in rows]
    links: dict[str, list[dict[str, Any]]] = {}
    for link in tx.query_in("SELECT * FROM hub_conflict_events WHERE conflict_id IN ({ids})",
                            ids):
        links.setdefault(link["conflict_id"], []).append(link)
    events = {e["id"]: e for e in tx.query_in(
        "SELECT id, type, origin, hlc, position, payload FROM events WHERE id IN ({ids})",
        {link["event_id"] for group in links.values() for link in group})}
    reviews: dict[str, list[dict[str, Any]]] = {}
    for review in tx.query_in("SELECT * FROM hub_conflict_reviews WHERE conflict_id IN "
                              "({ids}) ORDER BY id", ids):
        reviews.setdefault(review["conflict_id"], []).append(review)
    out = []
    for row in rows:
        details = json.loads(row["details"])
        details.pop("event_ids", None)
        involved = []
        for link in links.get(row["conflict_id"], []):
            event = events.get(link["event_id"])
            involved.append({"id": link["event_id"], "role": link["role"],
                             **(_event_line(event) if event else {"type": None})})
        involved.sort(key=lambda e: (e["role"] != "key", e.get("hlc") or "", e["id"]))
        out.append({
            "conflict_id": row["conflict_id"], "kind": row["kind"],
            "subject_id": row["subject_id"], "state": row["state"],
            "event_ids": json.loads(row["event_ids"]),
            "facility_ids": json.loads(row["facility_ids"]), "details": details,
            "raised_at": row["raised_at"], "raised_event_id": row["raised_event_id"],
            "raised_position": row["raised_position"],
            "state_changed_at": row["state_changed_at"],
            "state_changed_by": row["state_changed_by"], "note": row["note"],
            "reviews": [{"state": r["state"], "by": r["reviewed_by"], "note": r["note"],
                         "at": r["changed_at"], "event_id": r["event_id"]}
                        for r in reviews.get(row["conflict_id"], [])],
            "events": involved})
    return out


def _event_line(event: dict[str, Any]) -> dict[str, Any]:
    payload = event["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    summary = {k: v for k, v in payload.items() if k not in SUMMARY_SKIP}
    if isinstance(payload.get("items"), list):
        summary["items"] = len(payload["items"])
    return {"type": event["type"], "origin": event["origin"], "hlc": event["hlc"],
            "position": event["position"], "summary": summary}
