"""Read and search: FHIR search parameters turned into bound SQL over `sources`, checked
strictly (an unknown or malformed parameter is a 400 OperationOutcome, never a 500), and
limited to what the client may see (its resource types and regions)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync_protocol.hlc import HlcTimestamp

from ..storage import Tx
from ..storage.base import POSTGRESQL
from .access import Access
from .errors import BadSearch, UnknownResource
from .sources import COMMON_PARAMS, DATE, REFERENCE, SOURCES, TARGET_EVENTS, TOKEN, Source
from .systems import DOCUMENT, MED_ID, PINFL

DEFAULT_COUNT = 50
MAX_COUNT = 500  # a page of 500 resources stays under a few megabytes of JSON
MAX_OFFSET = 100_000  # deeper than this, use bulk export
MAX_VALUE_CHARS = 200  # no identifier, id or date is longer
# FHIR logical ids: letters, digits, '-' and '.', at most 64.
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")
IDENTIFIER_COLUMNS = {PINFL: "r.pinfl", DOCUMENT: "r.document", MED_ID: "r.med_id"}
STREAM_ROWS = 2000  # rows fetched at a time from a server-side cursor


@dataclass
class Query:
    """A parsed search: its SQL filter, parameters and page."""

    source: Source
    where: list[str]
    params: list[Any]
    count: int
    offset: int
    canonical: list[tuple[str, str]]  # the parameters as understood, for Bundle links


def now_instant() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_of(resource_type: str) -> Source:
    source = SOURCES.get(resource_type)
    if source is None:
        raise UnknownResource("Resource type %(type)s is not served here", field="type",
                              code="unknown_type", type=resource_type)
    return source


def check_id(resource_id: str, field: str = "_id") -> str:
    if not ID_PATTERN.match(resource_id):
        raise BadSearch("%(value)s is not a FHIR id (letters, digits, '-', '.', at most 64)",
                        field=field, code="bad_id", value=resource_id[:MAX_VALUE_CHARS])
    return resource_id


def _int(name: str, value: str, lowest: int, highest: int) -> int:
    if not value.isdigit() or not lowest <= int(value) <= highest:
        raise BadSearch("%(field)s must be a whole number from %(low)s to %(high)s",
                        field=name, code="bad_number", low=lowest, high=highest)
    return int(value)


def _date_bounds(name: str, value: str) -> tuple[str, str, str]:
    """(prefix, lowest instant, instant just after) of a date or dateTime value."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if start.tzinfo is None:
                raise ValueError("no time zone")
            start = start.astimezone(UTC)
            end = start + timedelta(seconds=1)
    except ValueError as e:
        raise BadSearch("%(field)s takes a date (YYYY-MM-DD) or an instant with its time zone, "
                        "optionally after eq, ge, le, gt or lt", field=name,
                        code="bad_date") from e
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return prefix, start.strftime(fmt), end.strftime(fmt)


def _date_clause(name: str, column: str, value: str) -> tuple[str, list[Any]]:
    prefix, low, high = _date_bounds(name, value)
    return {"eq": (f"({column} >= ? AND {column} < ?)", [low, high]),
            "ge": (f"{column} >= ?", [low]), "gt": (f"{column} >= ?", [high]),
            "lt": (f"{column} < ?", [low]), "le": (f"{column} < ?", [high])}[prefix]


def _reference(name: str, value: str, target: str | None) -> tuple[str, str]:
    kind, sep, rid = value.rpartition("/")
    if not sep:
        kind, rid = target or "", value
    if target and kind != target:
        raise BadSearch("%(field)s refers to %(target)s resources (%(target)s/id)", field=name,
                        code="bad_reference", target=target)
    if not target and kind not in TARGET_EVENTS:
        raise BadSearch("%(field)s takes Type/id of a resource type served here", field=name,
                        code="bad_reference")
    return kind, check_id(rid, name)


def _identifier(value: str) -> tuple[str, list[Any]]:
    system, sep, code = value.partition("|")
    if not sep:
        system, code = "", value
    if not code:
        raise BadSearch("identifier needs a value (system|value or value)", field="identifier",
                        code="bad_identifier")
    if system:
        column = IDENTIFIER_COLUMNS.get(system)
        if column is None:
            raise BadSearch("identifier system %(system)s is not one of %(known)s",
                            field="identifier", code="bad_identifier", system=system,
                            known=", ".join(IDENTIFIER_COLUMNS))
        return f"{column} = ?", [code]
    return "(r.pinfl = ? OR r.document = ? OR r.med_id = ?)", [code, code, code]


def _target(value: str) -> tuple[str, list[Any]]:
    kind, rid = _reference("target", value, None)
    by, types = TARGET_EVENTS[kind]
    if kind in ("MedicationRequest", "Condition"):
        rid = rid.rpartition("-")[0] or rid
    column = {"id": "r.fhir_id", "allergy": "r.allergy_id"}.get(by, "r.subject_id")
    return f"({column} = ? AND r.type IN ({types}))", [rid]


def parse(resource_type: str, args: Sequence[tuple[str, str]], now: str) -> Query:
    """Strict parsing: every parameter must be known and well formed."""
    source = source_of(resource_type)
    where: list[str] = []
    params: list[Any] = []
    count, offset, canonical = DEFAULT_COUNT, 0, []
    for name, value in args:
        if len(value) > MAX_VALUE_CHARS or not value:
            raise BadSearch("%(field)s needs a value of at most %(max)s characters",
                            field=name[:40], code="bad_value", max=MAX_VALUE_CHARS)
        if name == "_count":
            count = _int(name, value, 1, MAX_COUNT)
            continue
        if name == "_offset":
            offset = _int(name, value, 0, MAX_OFFSET)
            continue
        canonical.append((name, value))
        if name == "_id":
            parts = source.split_id(check_id(value))
            if parts is None:
                where.append("1 = 0")
                continue
            for column, part in zip(source.id_columns, parts, strict=True):
                if column != "diagnosis":
                    where.append(f"r.{column} = ?")
                    params.append(int(part) if column == "item_no" else part)
            continue
        param = source.params.get(name)
        if param is None:
            known = ", ".join(sorted([*COMMON_PARAMS, *source.params]))
            raise BadSearch("%(field)s is not a search parameter of %(type)s here (known: "
                            "%(known)s)", field=name[:40], code="unknown_parameter",
                            type=resource_type, known=known)
        if name == "identifier":
            clause, values = _identifier(value)
        elif name == "target":
            clause, values = _target(value)
        elif param.kind == DATE:
            clause, values = _date_clause(name, param.column, value)
        elif param.kind == REFERENCE and param.target == "MedicationRequest":
            parts = SOURCES["MedicationRequest"].split_id(_reference(name, value,
                                                                     param.target)[1])
            clause, values = (f"({param.column} = ? AND r.item_no = ?)", [parts[0],
                              int(parts[1])]) if parts else ("1 = 0", [])
        elif param.kind == REFERENCE:
            clause, values = f"{param.column} = ?", [_reference(name, value, param.target)[1]]
        elif param.kind == TOKEN:
            codes = value.split(",")
            if any(c not in param.codes for c in codes):
                raise BadSearch("%(field)s takes %(codes)s", field=name, code="bad_code",
                                codes=", ".join(param.codes))
            marks = ", ".join("?" * len(codes))
            clause = f"{param.column} IN ({marks})"
            values = [now] * param.column.count("?") + codes
        else:  # pragma: no cover - every Param kind is handled above
            raise BadSearch("%(field)s is not supported", field=name, code="unknown_parameter")
        where.append(clause)
        params.extend(values)
    return Query(source, where, params, count, offset, canonical)


def _scoped(tx: Tx, query: Query, access: Access,
            since: str | None = None) -> tuple[str, list[Any]]:
    where, params = list(query.where), list(query.params)
    if not access.all_regions:
        where.append(f"r.region IN ({', '.join('?' * len(access.regions))})")
        params.extend(sorted(access.regions))
    if since is not None:
        where.append(query.source.since)
        params.extend([since] * query.source.since.count("?"))
    sql = f"SELECT * FROM ({query.source.select(tx.dialect)}) r"  # noqa: S608 - constants
    return sql + (" WHERE " + " AND ".join(where) if where else ""), params


def run(tx: Tx, query: Query, access: Access, now: str) -> tuple[list[dict], bool]:
    """One page of resources, and whether more follow."""
    sql, params = _scoped(tx, query, access)
    rows = tx.query(f"{sql} ORDER BY {query.source.order} LIMIT ? OFFSET ?",
                    [*params, query.count + 1, query.offset])
    more = len(rows) > query.count
    return to_resources(query.source, rows[:query.count], now), more


def to_resources(source: Source, rows: list[dict], now: str) -> list[dict]:
    out: list[dict] = []
    for row in rows:
        out.extend(source.to_resources(row, now) if source.needs_now else source.to_resources(row))
    return out


def read(tx: Tx, resource_type: str, resource_id: str, access: Access, now: str) -> dict:
    query = parse(resource_type, [("_id", resource_id)], now)
    found = [r for r in run(tx, query, access, now)[0] if r["id"] == resource_id]
    if not found:
        raise UnknownResource("%(type)s/%(id)s is not here (or not in your scopes)", field="id",
                              code="not_found", type=resource_type, id=resource_id)
    return found[0]


def since_hlc(instant: str) -> str:
    """The smallest clock at or after an instant: `_since` compares clocks as text."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return str(HlcTimestamp(int(moment.timestamp() * 1000), 0))


def stream(tx: Tx, resource_type: str, access: Access, since: str | None,
           now: str) -> Iterator[dict]:
    """Every resource of a type the client may see, read through a server-side cursor on
    PostgreSQL (a named cursor) and SQLite's own stepping cursor: memory stays bounded."""
    query = parse(resource_type, [], now)
    sql, params = _scoped(tx, query, access, since_hlc(since) if since else None)
    for rows in _batches(tx, sql, params):
        yield from to_resources(query.source, rows, now)


def _batches(tx: Tx, sql: str, params: list[Any]) -> Iterator[list[dict]]:
    conn = tx.conn  # type: ignore[attr-defined]
    if tx.dialect == POSTGRESQL:
        from ..storage.postgres import to_pyformat
        with conn.cursor(name="fhir_export") as cursor:
            cursor.itersize = STREAM_ROWS
            cursor.execute(to_pyformat(sql), tuple(params))
            while rows := cursor.fetchmany(STREAM_ROWS):
                yield rows
        return
    cursor = conn.execute(sql, tuple(params))
    while rows := cursor.fetchmany(STREAM_ROWS):
        yield rows
