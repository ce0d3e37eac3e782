"""The sync wire format: what a node and the hub send each other, and how it is batched.

Push  POST /sync/v1/push   {"node_id", "events": [event dicts in seq order]}
      -> {"results": [{"id", "status", "code", "reason"}, ...], "acked_seq", "hub_head"}
      results[i] answers events[i]; acked_seq is the highest gap-free seq of the pushing
      node the hub holds (accepted, or refused for good); the node resends everything above it.
Pull  GET /sync/v1/pull?after=<cursor>&limit=<n>&max_bytes=<n>
      -> {"events": [{"position", "event"}, ...], "next", "head", "more"}
      `next` is the cursor for the following page; when `more` is false, `next` equals `head`
      and the node has provably reached the hub's head (DESIGN 7.6).

Bodies are compact UTF-8 JSON, optionally gzip-compressed (Content-Encoding: gzip) both ways.
Sizes are always counted on the uncompressed JSON, so a limit means the same on both ends.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError
from .json_body import BadJson, parse_json

log = logging.getLogger(__name__)

PUSH_PATH = "/sync/v1/push"
PULL_PATH = "/sync/v1/pull"
TRUST_PATH = "/sync/v1/trust"
# Claims (sync_protocol.claims): a pharmacy online claims quantities before it dispenses.
CLAIM_PATH = "/sync/v1/claims"
CLAIM_STATUS_PATH = "/sync/v1/claims/status"
CLAIM_RELEASE_PATH = "/sync/v1/claims/release"
# A signed request that does nothing: the bare reference of the claims benchmark.
PING_PATH = "/sync/v1/ping"
JSON_TYPE = "application/json"
GZIP = "gzip"

# A batch of this many bytes crosses a 2G link (~100 kbit/s) in well under a minute, so a cut
# connection loses little work, and it holds hundreds of typical events (0.3-2 kB each).
MAX_BATCH_BYTES = 512 * 1024
# Bounds the hub's per-batch work (one transaction) and the size of a per-event answer.
MAX_BATCH_EVENTS = 1000
# The hub refuses larger (decompressed) bodies with 413. Twice the batch target, so a node
# configured a little differently never loops on 413, while one request stays bounded.
MAX_BODY_BYTES = 2 * MAX_BATCH_BYTES
# Halving stops here: one event (at most sync_protocol.events.MAX_EVENT_BYTES) always fits.
MIN_BATCH_BYTES = 64 * 1024
# Bodies smaller than this are sent as they are: gzip's header costs more than it saves.
GZIP_MIN_BYTES = 1024
# gzip level 6 is zlib's default; higher levels cost Pi CPU for a percent or two.
GZIP_LEVEL = 6
# Cursors and seqs are 63-bit integers in both databases.
MAX_CURSOR = 2**63 - 1

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REFUSED = "refused"
STATUSES = (ACCEPTED, DUPLICATE, REFUSED)


class WireError(ProtocolError):
    """A request or response that is not in the wire format."""

    code = "bad_request"
    http_status = 400


class MalformedBody(WireError):
    code = "bad_json"


class BodyTooLarge(WireError):
    code = "too_large"
    http_status = 413


class BadField(WireError):
    code = "bad_field"


# -- bodies ------------------------------------------------------------------------------

def dumps(value: Any) -> bytes:
    """The byte form of every body: compact JSON, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_size(value: Any) -> int:
    return len(dumps(value))


def encode_body(value: Any, *, compress: bool = True) -> tuple[bytes, dict[str, str]]:
    """JSON bytes (gzip-compressed when worth it) and the headers that describe them."""
    raw = dumps(value)
    headers = {"Content-Type": JSON_TYPE}
    if compress and len(raw) >= GZIP_MIN_BYTES:
        raw = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = GZIP
    return raw, headers


def decompress(data: bytes, content_encoding: str | None,
               limit: int = MAX_BODY_BYTES) -> bytes:
    """The body as JSON bytes, never inflating past `limit` (a gzip bomb stops there)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(data) > limit:
            raise BodyTooLarge("Request body is larger than %(limit)s bytes", field="body",
                               limit=limit)
        return data
    if encoding != GZIP:
        raise WireError("Content-Encoding %(encoding)s is not supported; use gzip",
                        field="Content-Encoding", code="bad_encoding", encoding=encoding)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)  # never more than limit + 1 bytes
    except zlib.error as e:
        raise MalformedBody("Request body is not valid gzip data", field="body") from e
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge("Request body is larger than %(limit)s bytes", field="body",
                           limit=limit)
    if not inflater.eof or inflater.unused_data:
        raise MalformedBody("Request body is truncated or trailing gzip data", field="body")
    return out


def decode_body(data: bytes, content_encoding: str | None = None,
                limit: int = MAX_BODY_BYTES) -> Any:
    """Decompress (bounded) and parse a JSON body; MalformedBody or BodyTooLarge otherwise."""
    raw = decompress(data, content_encoding, limit)
    try:
        return parse_json(raw, max_bytes=limit)
    except BadJson as e:
        raise MalformedBody(e.message, field="body", code=e.code, **e.params) from e


# -- validation helpers ------------------------------------------------------------------

def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadField("%(what)s must be a JSON object", field="body", what=what)
    return data


def _int(data: Mapping[str, Any], name: str, *, minimum: int = 0,
         maximum: int = MAX_CURSOR) -> int:
    value = data.get(name)
    if type(value) is not int or not minimum <= value <= maximum:
        raise BadField("Field %(name)s must be an integer from %(minimum)s to %(maximum)s",
                       field=name, name=name, minimum=minimum, maximum=maximum)
    return value


def _str(data: Mapping[str, Any], name: str, *, optional: bool = False,
         max_length: int = 500) -> str | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BadField("Field %(name)s must be a text of 1 to %(max)s characters", field=name,
                       name=name, max=max_length)
    return value


def _list(data: Mapping[str, Any], name: str, max_items: int) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list):
        raise BadField("Field %(name)s must be a list", field=name, name=name)
    if len(value) > max_items:
        raise BadField("Field %(name)s has %(count)s items; at most %(max)s are allowed",
                       field=name, name=name, count=len(value), max=max_items)
    return value


# -- push --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushRequest:
    node_id: str
    events: list[Any]  # event dicts; each one is checked (and refused alone) by the hub

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "events": list(self.events)}

    @classmethod
    def from_dict(cls, data: Any) -> PushRequest:
        data = _object(data, "A push request")
        node_id = _str(data, "node_id", max_length=64)
        return cls(node_id or "", _list(data, "events", MAX_BATCH_EVENTS))


@dataclass(frozen=True)
class EventResult:
    id: str | None  # None when the pushed item had no readable id
    status: str
    code: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise BadField("Status %(status)s is not one of %(statuses)s", field="status",
                           status=self.status, statuses=", ".join(STATUSES))
        if self.status == REFUSED and not self.code:
            raise BadField("A refused event needs a code", field="code")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "code": self.code,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Any) -> EventResult:
        data = _object(data, "An event result")
        return cls(_str(data, "id", optional=True, max_length=64),
                   _str(data, "status", max_length=16) or "",
                   _str(data, "code", optional=True, max_length=64),
                   _str(data, "reason", optional=True, max_length=2000))


@dataclass(frozen=True)
class PushResponse:
    results: list[EventResult]
    acked_seq: int
    hub_head: int

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "acked_seq": self.acked_seq,
                "hub_head": self.hub_head}

    @classmethod
    def from_dict(cls, data: Any) -> PushResponse:
        data = _object(data, "A push response")
        results = [EventResult.from_dict(r) for r in _list(data, "results", MAX_BATCH_EVENTS)]
        return cls(results, _int(data, "acked_seq"), _int(data, "hub_head"))


# -- pull --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PullQuery:
    after: int = 0
    limit: int = MAX_BATCH_EVENTS
    max_bytes: int = MAX_BATCH_BYTES

    def __post_init__(self) -> None:
        checks = (("after", self.after, 0, MAX_CURSOR),
                  ("limit", self.limit, 1, MAX_BATCH_EVENTS),
                  ("max_bytes", self.max_bytes, 1024, MAX_BATCH_BYTES))
        for name, value, low, high in checks:
            if type(value) is not int or not low <= value <= high:
                raise BadField("Parameter %(name)s must be an integer from %(minimum)s to "
                               "%(maximum)s", field=name, name=name, minimum=low, maximum=high)

    def to_params(self) -> dict[str, str]:
        return {"after": str(self.after), "limit": str(self.limit),
                "max_bytes": str(self.max_bytes)}

    def to_query_string(self) -> str:
        """The query in a fixed order: what the node signs must be what it sends."""
        return "&".join(f"{name}={value}" for name, value in self.to_params().items())

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> PullQuery:
        """Parse query parameters; unknown ones are refused (scope is never a parameter:
        it comes from the node's certificate)."""
        for name in params:
            if name not in ("after", "limit", "max_bytes"):
                raise BadField("Unknown parameter %(name)s: a pull takes after, limit and "
                               "max_bytes; its scope comes from the node's certificate",
                               field=name, code="unknown_parameter", name=name)
        values: dict[str, int] = {}
        for name in ("after", "limit", "max_bytes"):
            raw = params.get(name)
            if raw is None or raw == "":
                continue
            if not (isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 20):
                raise BadField("Parameter %(name)s must be a whole number", field=name,
                               name=name)
            values[name] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class PulledEvent:
    position: int  # the event's place in the hub's global log
    event: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "event": self.event}

    @classmethod
    def from_dict(cls, data: Any) -> PulledEvent:
        data = _object(data, "A pulled event")
        event = data.get("event")
        if not isinstance(event, dict):
            raise BadField("Field event must be a JSON object", field="event")
        return cls(_int(data, "position", minimum=1), event)


@dataclass(frozen=True)
class PullResponse:
    events: list[PulledEvent]
    next: int
    head: int
    more: bool
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer hub adds

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "events": [e.to_dict() for e in self.events], "next": self.next,
                "head": self.head, "more": self.more}

    @classmethod
    def from_dict(cls, data: Any) -> PullResponse:
        data = _object(data, "A pull response")
        events = [PulledEvent.from_dict(e) for e in _list(data, "events", MAX_BATCH_EVENTS)]
        more = data.get("more")
        if not isinstance(more, bool):
            raise BadField("Field more must be true or false", field="more")
        extra = {k: v for k, v in data.items() if k not in ("events", "next", "head", "more")}
        return cls(events, _int(data, "next"), _int(data, "head"), more, extra)


# -- batching ----------------------------------------------------------------------------

def split_batches(events: Iterable[dict[str, Any]], *, max_bytes: int = MAX_BATCH_BYTES,
                  max_events: int = MAX_BATCH_EVENTS) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches in the given order, each within both bounds.

    An event larger than `max_bytes` travels alone (the hub still bounds it by
    MAX_EVENT_BYTES); a batch is never empty.
    """
    if max_bytes < 1 or max_events < 1:
        raise ValueError("batch bounds must be positive")
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_bytes = json_size(event) + 1  # the comma between list items
        if batch and (len(batch) >= max_events or size + event_bytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_bytes
    if batch:
        yield batch


def first_batch(events: Iterable[dict[str, Any]], *, max_bytes: int = MAX_BATCH_BYTES,
                max_events: int = MAX_BATCH_EVENTS) -> list[dict[str, Any]]:
    return next(split_batches(events, max_bytes=max_bytes, max_events=max_events), [])


@dataclass
class AdaptiveBatch:
    """Batch bounds that halve on 413 or a timeout and grow back after successes (DESIGN 7.5).

    Growth is slow (double after GROW_AFTER successes in a row) so a link that just failed
    is not hit with a full batch again at once.
    """

    GROW_AFTER = 4

    max_bytes: int = MAX_BATCH_BYTES
    max_events: int = MAX_BATCH_EVENTS
    ceiling_bytes: int = MAX_BATCH_BYTES
    ceiling_events: int = MAX_BATCH_EVENTS
    successes: int = 0

    def shrink(self) -> bool:
        """Halve both bounds; False once they cannot shrink any further."""
        self.successes = 0
        smaller = (max(MIN_BATCH_BYTES, self.max_bytes // 2), max(1, self.max_events // 2))
        changed = smaller != (self.max_bytes, self.max_events)
        self.max_bytes, self.max_events = smaller
        return changed

    def succeeded(self) -> None:
        self.successes += 1
        if self.successes >= self.GROW_AFTER:
            self.successes = 0
            self.max_bytes = min(self.ceiling_bytes, self.max_bytes * 2)
            self.max_events = min(self.ceiling_events, self.max_events * 2)

    def split(self, events: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        return split_batches(events, max_bytes=self.max_bytes, max_events=self.max_events)
