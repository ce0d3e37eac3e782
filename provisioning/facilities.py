"""The region's facilities: provisioned data kept beside the keys, signed when handed out.

facilities.json in the provisioning store maps a facility code to its record (see
sync_protocol.facility_record). Enrolment (a bundle, or the answer to a node's CSR) carries
the record signed by the region, so `dmed-node init` registers the facility and serves at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from provisioning.errors import AlreadyExists, InvalidRequest, NotFound
from provisioning.keystore import CaStore, write_public
from sync_protocol.facility_record import FacilityInvalid, FacilityRecord, sign_facility
from sync_protocol.identifiers import new_ulid

log = logging.getLogger(__name__)

FACILITIES_FILE = "facilities.json"


def _path(store: CaStore):
    return store.directory / FACILITIES_FILE


def _load(store: CaStore) -> dict[str, FacilityRecord]:
    path = _path(store)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {code: FacilityRecord.from_dict(record) for code, record in data.items()}


def _save(store: CaStore, records: dict[str, FacilityRecord]) -> None:
    data = {code: records[code].to_dict() for code in sorted(records)}
    write_public(_path(store), json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))


def list_facilities(store: CaStore, region: str | None = None) -> list[FacilityRecord]:
    return [r for r in _load(store).values() if region is None or r.region == region]


def get_facility(store: CaStore, code: str) -> FacilityRecord:
    record = _load(store).get(code)
    if record is None:
        raise NotFound("Facility %(facility_code)s is not provisioned; add it first.",
                       field="facility", facility_code=code)
    return record


def add_facility(store: CaStore, *, code: str, kind: str, region: str, names: dict[str, str],
                 address: str, district: str,
                 opening_hours: dict[str, str] | None = None) -> FacilityRecord:
    """Record a new facility of a region held in this store."""
    store.region(region)  # NotFound for a region this store cannot sign for
    try:
        record = FacilityRecord(new_ulid(), code, kind, region, dict(names), address, district,
                                dict(opening_hours or {}))
    except FacilityInvalid as e:
        raise InvalidRequest(e.message, field=e.field, **e.params) from e
    with store._locked():
        records = _load(store)
        if code in records:
            raise AlreadyExists("Facility %(facility_code)s exists already.", field="code",
                                facility_code=code)
        records[code] = record
        _save(store, records)
    log.info("provisioned %s facility %s of region %s", kind, code, region)
    return record


def update_facility(store: CaStore, code: str, **changes: Any) -> FacilityRecord:
    """Change a facility's details; the revision grows so nodes keep the newest."""
    fixed = {"facility_id", "code", "kind", "region", "revision"} & set(changes)
    if fixed:
        raise InvalidRequest("%(names)s of a facility cannot change.", field=sorted(fixed)[0],
                             names=", ".join(sorted(fixed)))
    with store._locked():
        records = _load(store)
        if code not in records:
            raise NotFound("Facility %(facility_code)s is not provisioned; add it first.",
                           field="facility", facility_code=code)
        try:
            record = replace(records[code], revision=records[code].revision + 1, **changes)
        except FacilityInvalid as e:
            raise InvalidRequest(e.message, field=e.field, **e.params) from e
        records[code] = record
        _save(store, records)
    return record


def signed_facility(store: CaStore, code: str) -> dict[str, Any]:
    """The record signed by its region, as enrolment carries it."""
    record = get_facility(store, code)
    region = store.region(record.region)
    return sign_facility(record, region.key, region.cert)
