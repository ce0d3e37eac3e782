"""A region changes a facility's details: its signed record (sync_protocol.facility_record,
made by `dmed-provision update-facility`) is imported at the hub, checked against the
region's certificate in the hub's trust list, and carried to the region's nodes as the hub
event FacilityDetailsChanged. Revisions only grow, so the hub's chain orders them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sync_protocol.certificates import region_code_of
from sync_protocol.event_names import FACILITY_DETAILS_CHANGED
from sync_protocol.facility_record import FacilityInvalid, FacilitySignatureInvalid
from sync_protocol.facility_record import verify_facility as verify_record

from .errors import HubError
from .hub_events import HUB_ORIGIN, emit_hub_event
from .storage import Storage
from .trust_store import TrustStore

log = logging.getLogger(__name__)


def import_facility_update(storage: Storage, signed: Any) -> int:
    """Check and publish a region's signed facility record; returns its revision."""
    record_region = (signed.get("record") or {}).get("region") if isinstance(signed, dict) \
        else None
    regions = [c for c in TrustStore(storage).trust_list.regions
               if region_code_of(c) == record_region]
    if not regions:
        raise HubError("No region %(region)s in the hub's trust list.", field="record",
                       region=record_region)
    try:
        record = verify_record(signed, regions[0])
    except (FacilityInvalid, FacilitySignatureInvalid) as e:
        raise HubError(e.message, field="record", code=e.code, **e.params) from e
    with storage.transaction() as tx:
        known = tx.one("SELECT 1 FROM scope_facilities WHERE facility_id = ?",
                       (record.facility_id,))
        if known is None:
            raise HubError("Facility %(facility_code)s has not been registered by its node "
                           "yet.", field="record", facility_code=record.code)
        published = [_payload(row["payload"])["revision"] for row in tx.query(
            "SELECT payload FROM events WHERE subject_id = ? AND origin = ? AND type = "  # noqa: S608
            f"'{FACILITY_DETAILS_CHANGED}'", (record.facility_id, HUB_ORIGIN))]
        if published and record.revision <= max(published):
            raise HubError("Revision %(revision)s of %(facility_code)s is not newer than "
                           "%(last)s.", field="record", revision=record.revision,
                           facility_code=record.code, last=max(published))
        emit_hub_event(tx, FACILITY_DETAILS_CHANGED, {
            "facility_id": record.facility_id, "revision": record.revision, "signed": signed})
    log.info("facility %s revision %s published", record.code, record.revision)
    return record.revision


def _payload(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str | bytes) else value
