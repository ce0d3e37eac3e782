"""Projection of FacilityDetailsChanged: the region's signed change of a facility's details.

The hub checked the region's signature before publishing; the node checks it again against
the trust list it holds (node_state, synced), and refuses an event it cannot verify (it goes
to apply_failures, loudly). Its own facility's full record (names in uz/ru/en, district,
opening hours) is kept for the screens.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from sync_protocol.certificates import region_code_of
from sync_protocol.events import Event
from sync_protocol.facility_record import verify_facility
from sync_protocol.trust_list import TrustList

log = logging.getLogger(__name__)

TRUST_LIST_STATE = "trust_list"  # edge_node.trust_store.STATE_KEY
FACILITY_PROFILE = "facility_profile"  # edge_node.services.facilities.FACILITY_PROFILE


# edge_node.projections lists it as the FacilityDetailsChanged handler.
def facility_details(conn: sqlite3.Connection, event: Event) -> None:
    signed = event.payload["signed"]
    region_code = (signed.get("record") or {}).get("region")
    row = conn.execute("SELECT value FROM node_state WHERE key = ?",
                       (TRUST_LIST_STATE,)).fetchone()
    if row is not None:  # before the first trust sync, the hub's check stands
        regions = [c for c in TrustList.from_json(row[0]).regions
                   if region_code_of(c) == region_code]
        if not regions:
            raise ValueError(f"no certificate of region {region_code} to check the change")
        record = verify_facility(signed, regions[0])
    else:
        from sync_protocol.facility_record import FacilityRecord
        record = FacilityRecord.from_dict(signed.get("record"))
    if record.facility_id != event.payload["facility_id"]:
        raise ValueError("the signed record is for another facility")
    conn.execute("UPDATE facilities SET name = ?, address = ? WHERE facility_id = ?",
                 (record.names["uz"], record.address, record.facility_id))
    own = conn.execute("SELECT value FROM node_state WHERE key = 'facility_id'").fetchone()
    if own is not None and own[0] == record.facility_id:
        conn.execute("INSERT INTO node_state (key, value) VALUES (?, ?) ON CONFLICT (key) "
                     "DO UPDATE SET value = excluded.value",
                     (FACILITY_PROFILE, json.dumps(record.to_dict(), ensure_ascii=False)))
