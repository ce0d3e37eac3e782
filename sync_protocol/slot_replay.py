"""Who holds each slot: every appointment event replayed in clock order (one rule for both).

The hub replays the events of the appointments that share a slot with a batch's
(central_hub.appointment_replay); the node replays the same way the appointments that share a
slot with the event it applies (edge_node.slot_projection). Same rows in, same result out, so
a node ends where the hub does whatever order its events arrived in (DESIGN 4.3).

In clock order a claim (a booking, or a move to a slot) never meets a holder with a later
clock, so the earlier (hlc, origin) keeps the slot (sync_protocol.rules.claim_slot) and a
claim made while another holds the slot is 'bumped' and stays so: a release (cancel, move
away) later in clock order does not hand the slot over. A row is one event: event_id,
appointment_id, type, hlc, origin, and the payload's patient_id, practitioner_id,
facility_id, starts_at, channel, queue_number, reason (None where it has none).
"""

from __future__ import annotations

from typing import Any

from .event_names import (
    APPOINTMENT_BOOKED,
    APPOINTMENT_CANCELLED,
    APPOINTMENT_CHECKED_IN,
    APPOINTMENT_COMPLETED,
    APPOINTMENT_NO_SHOW,
    APPOINTMENT_RESCHEDULED,
)
from .rules import HOLDING_STATUSES, claim_slot

# Statuses that hold a slot (sync_protocol.rules).
HOLDING = frozenset(HOLDING_STATUSES)
LIFECYCLE = {APPOINTMENT_CHECKED_IN: "checked_in", APPOINTMENT_COMPLETED: "completed",
             APPOINTMENT_NO_SHOW: "no_show", APPOINTMENT_CANCELLED: "cancelled"}
# The events that claim a slot (their starts_at, and practitioner_id if they name one).
CLAIMING = (APPOINTMENT_BOOKED, APPOINTMENT_RESCHEDULED)
APPOINTMENT_EVENTS = (*CLAIMING, *LIFECYCLE)


def slot_key(practitioner_id: str, starts_at: str) -> str:
    return f"{practitioner_id}@{starts_at}"


def clock_order(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["hlc"], row["origin"], row["event_id"]


def replay_appointments(rows: list[dict[str, Any]]
                        ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The appointment rules applied to `rows` in clock order (hlc, origin, event id).

    Returns the appointments and every slot claim with its release. In clock order a claim
    never meets a holder with a later clock, so the earlier (hlc, origin) always keeps the slot.
    """
    state: dict[str, dict[str, Any]] = {}
    claims: list[dict[str, Any]] = []
    open_claim: dict[str, dict[str, Any]] = {}
    # Appointments filed under each slot they were booked or moved to; one moved away since is
    # skipped by the slot check below, so filing never has to be undone.
    filed: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def claim(a: dict[str, Any], row: dict[str, Any]) -> None:
        slot = (a["practitioner_id"], a["starts_at"])
        holders = [h for h in filed.get(slot, ()) if h is not a and h["status"] in HOLDING and
                   h["practitioner_id"] == a["practitioner_id"] and
                   h["starts_at"] == a["starts_at"]]
        filed.setdefault(slot, []).append(a)
        holder = min(holders, key=lambda h: (h["booked_hlc"], h["booked_origin"]), default=None)
        a["booked_hlc"], a["booked_origin"], a["bumped_by"] = row["hlc"], row["origin"], None
        a["status"], holder_status = claim_slot(
            None if holder is None else (holder["booked_hlc"], holder["booked_origin"]),
            (row["hlc"], row["origin"]))
        if holder is not None and holder_status is None:
            a["bumped_by"] = holder["appointment_id"]
        elif holder is not None:
            holder["status"], holder["bumped_by"] = holder_status, a["appointment_id"]
        release(a, None)
        open_claim[a["appointment_id"]] = record = {
            "event_id": row["event_id"], "appointment_id": a["appointment_id"],
            "slot": slot_key(a["practitioner_id"], a["starts_at"]),
            "practitioner_id": a["practitioner_id"], "starts_at": a["starts_at"],
            "facility_id": a["facility_id"], "patient_id": a["patient_id"], "hlc": row["hlc"],
            "origin": row["origin"], "release_hlc": None, "release_origin": None,
            "release_event_id": None}
        claims.append(record)

    def release(a: dict[str, Any], row: dict[str, Any] | None) -> None:
        record = open_claim.pop(a["appointment_id"], None)
        if record is not None and row is not None:
            record.update(release_hlc=row["hlc"], release_origin=row["origin"],
                          release_event_id=row["event_id"])

    for row in sorted(rows, key=clock_order):
        kind, a = row["type"], state.get(row["appointment_id"])
        if kind == APPOINTMENT_BOOKED:
            if a is not None:
                continue
            a = {"appointment_id": row["appointment_id"], "patient_id": row["patient_id"],
                 "practitioner_id": row["practitioner_id"], "facility_id": row["facility_id"],
                 "starts_at": row["starts_at"], "channel": row["channel"], "status": None,
                 "queue_number": None, "cancel_reason": None}
            claim(a, row)
            state[a["appointment_id"]] = a
        elif a is None:
            continue  # as on the node: an event about an appointment not booked (yet)
        elif kind == APPOINTMENT_RESCHEDULED:
            release(a, row)
            a["status"] = "moving"
            a["practitioner_id"] = row["practitioner_id"] or a["practitioner_id"]
            a["starts_at"] = row["starts_at"]
            claim(a, row)
        else:
            a["status"] = LIFECYCLE[kind]
            if kind == APPOINTMENT_CHECKED_IN:
                a["queue_number"] = row["queue_number"]
            elif kind == APPOINTMENT_CANCELLED:
                a["cancel_reason"] = row["reason"]
                release(a, row)
    return state, claims
