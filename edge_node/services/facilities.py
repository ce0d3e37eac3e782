"""Facilities and practitioners (family doctors and specialists)."""

from __future__ import annotations

import json
import logging
import sqlite3

from sync_protocol.event_names import FACILITY_REGISTERED, PRACTITIONER_REGISTERED
from sync_protocol.facility_record import FacilityRecord
from sync_protocol.identifiers import new_ulid

from ..errors import Conflict, NotFound, ValidationFailed
from ..store import NodeStore
from .access import Actor
from .records import FacilityDetails, PractitionerRecord, record

log = logging.getLogger(__name__)

FACILITY_KINDS = ("clinic", "pharmacy")
FACILITY_PROFILE = "facility_profile"  # node_state key: the region's full facility record
# Specialties offered for booking; the kiosk shows them translated.
SPECIALTIES = ("family_medicine", "therapy", "paediatrics", "cardiology", "neurology",
               "endocrinology", "gynaecology", "surgery", "ophthalmology", "otolaryngology",
               "dermatology", "dentistry", "laboratory")


def _text(value: object, field: str, limit: int = 200) -> str:
    text = str(value or "").strip()
    if not text or len(text) > limit:
        raise ValidationFailed("%(field)s is required (at most %(limit)s characters)",
                               field=field, limit=limit)
    return text


def register_facility(store: NodeStore, actor: Actor, *, code: str, name: str, kind: str,
                      region: str, address: str | None = None) -> str:
    actor.require("manage_facility")
    if kind not in FACILITY_KINDS:
        raise ValidationFailed("Facility kind must be clinic or pharmacy", field="kind")
    payload = {"facility_id": new_ulid(), "code": _text(code, "code", 64),
               "name": _text(name, "name"), "kind": kind, "region": _text(region, "region", 64)}
    if address:
        payload["address"] = _text(address, "address", 400)
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM facilities WHERE code = ?", (payload["code"],)):
            raise Conflict("A facility with code %(value)s already exists", field="code",
                           value=payload["code"])
        tx.append(FACILITY_REGISTERED, payload)
    return payload["facility_id"]


def register_practitioner(store: NodeStore, actor: Actor, *, facility_id: str, full_name: str,
                          specialty: str, is_family_doctor: bool = False) -> str:
    actor.require("manage_facility")
    if specialty not in SPECIALTIES:
        raise ValidationFailed("Unknown specialty %(specialty)s", field="specialty",
                               specialty=specialty)
    practitioner_id = new_ulid()
    payload = {"practitioner_id": practitioner_id, "facility_id": facility_id,
               "full_name": _text(full_name, "full_name"), "specialty": specialty,
               "is_family_doctor": bool(is_family_doctor)}
    with store.transaction() as tx:
        load_facility(tx.conn, facility_id)
        tx.append(PRACTITIONER_REGISTERED, payload)
    return practitioner_id


def get_facility(store: NodeStore, facility_id: str) -> FacilityDetails:
    return record(load_facility(store.reader(), facility_id), FacilityDetails)


def load_facility(conn: sqlite3.Connection, facility_id: str) -> sqlite3.Row:
    """The facility's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM facilities WHERE facility_id = ?",
                       (facility_id,)).fetchone()
    if row is None:
        raise NotFound("Facility %(id)s is not known on this node", field="facility_id",
                       id=facility_id)
    return row


def get_practitioner(store: NodeStore, practitioner_id: str) -> PractitionerRecord:
    return record(load_practitioner(store.reader(), practitioner_id), PractitionerRecord)


def load_practitioner(conn: sqlite3.Connection, practitioner_id: str) -> sqlite3.Row:
    """The doctor's row, read inside a service's transaction."""
    row = conn.execute("SELECT * FROM practitioners WHERE practitioner_id = ?",
                       (practitioner_id,)).fetchone()
    if row is None:
        raise NotFound("Doctor %(id)s is not known on this node", field="practitioner_id",
                       id=practitioner_id)
    return row


def list_facilities(store: NodeStore) -> list[dict]:
    return [dict(r) for r in store.query("SELECT * FROM facilities ORDER BY name")]


def list_practitioners(store: NodeStore, facility_id: str | None = None,
                       specialty: str | None = None) -> list[dict]:
    sql = "SELECT * FROM practitioners WHERE 1=1"
    params: list[str] = []
    if facility_id:
        sql += " AND facility_id = ?"
        params.append(facility_id)
    if specialty:
        sql += " AND specialty = ?"
        params.append(specialty)
    rows = store.query(sql + " ORDER BY full_name", tuple(params))
    return [{**dict(r), "is_family_doctor": bool(r["is_family_doctor"])} for r in rows]


def node_kind(store: NodeStore) -> str | None:
    """This node's own facility kind (clinic or pharmacy), or None before it is seeded."""
    facility_id = store.state("facility_id")
    if not facility_id:
        return None
    row = store.one("SELECT kind FROM facilities WHERE facility_id = ?", (facility_id,))
    return row["kind"] if row else None


def register_provisioned(store: NodeStore, actor: Actor, record: FacilityRecord) -> str:
    """Register the facility the region provisioned (checked by the caller) as this node's.

    Its id comes from the region, so a replacement node registers the same facility; the full
    record (names in uz/ru/en, district, opening hours) is kept in node state for the screens.
    """
    actor.require("manage_facility")
    with store.transaction() as tx:
        known = tx.one("SELECT facility_id FROM facilities WHERE code = ?", (record.code,))
        if known is not None and known["facility_id"] != record.facility_id:
            raise Conflict("A facility with code %(value)s already exists", field="code",
                           value=record.code)
        if known is None:
            tx.append(FACILITY_REGISTERED, record.event_payload())
        store.set_state(tx.conn, "facility_id", record.facility_id)
        store.set_state(tx.conn, FACILITY_PROFILE, json.dumps(record.to_dict(),
                                                              ensure_ascii=False))
    log.info("registered provisioned facility %s (revision %s)", record.code, record.revision)
    return record.facility_id
