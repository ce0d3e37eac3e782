"""The event envelope: what every node appends to its log and the hub stores once.

An event is immutable. Its hash covers every field but the hash itself and includes the hash
of the same node's previous event, so a log that was edited, reordered or had an event removed
no longer verifies (tamper evidence, not secrecy: signatures are on the sync requests).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ChainBroken, EventRejected, ProtocolError
from .event_types import validate_payload
from .hlc import HlcTimestamp
from .identifiers import is_ulid

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
_quote = json.encoder.encode_basestring  # json.dumps of a str with ensure_ascii=False
ENVELOPE_FIELDS = ("id", "origin", "seq", "hlc", "type", "version", "payload", "prev_hash",
                   "hash")
# Bounds a single event so one bad record cannot fill a batch or a small SD card.
MAX_EVENT_BYTES = 64 * 1024


def canonical_json(value: Any) -> bytes:
    """The one byte form used for hashing: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_body(event: Event, payload_json: str) -> bytes:
    """canonical_json(event.body()), given the payload's canonical text: the envelope's keys
    in their sorted order around it, so a received event's payload is serialised once."""
    quote = _quote
    return (f'{{"hlc":{quote(event.hlc)},"id":{quote(event.id)},"origin":{quote(event.origin)},'
            f'"payload":{payload_json},"prev_hash":{quote(event.prev_hash)},"seq":{event.seq},'
            f'"type":{quote(event.type)},"version":{event.version}}}').encode()


def payload_json(payload: dict[str, Any]) -> str:
    """A payload's canonical text (canonical_json, as str)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Event:
    id: str
    origin: str
    seq: int
    hlc: str
    type: str
    version: int
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def body(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies payloads of thousands of slots.
        return {"id": self.id, "origin": self.origin, "seq": self.seq, "hlc": self.hlc,
                "type": self.type, "version": self.version, "payload": self.payload,
                "prev_hash": self.prev_hash}

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    @property
    def timestamp(self) -> HlcTimestamp:
        return HlcTimestamp.parse(self.hlc)


def seal(*, id: str, origin: str, seq: int, hlc: HlcTimestamp, type: str, version: int,
         payload: dict[str, Any], prev_hash: str) -> Event:
    """Validate a new local event and give it its hash."""
    validate_payload(type, version, payload)
    unsealed = Event(id=id, origin=origin, seq=seq, hlc=str(hlc), type=type, version=version,
                     payload=payload, prev_hash=prev_hash)
    body = canonical_json(unsealed.body())
    if len(body) > MAX_EVENT_BYTES:
        raise EventRejected("Event is larger than %(limit)s bytes", code="event_too_large",
                            limit=MAX_EVENT_BYTES)
    return Event(**{**unsealed.body(), "hash": hashlib.sha256(body).hexdigest()})


def event_from_dict(data: Any) -> Event:
    """Check a received event's envelope, payload schema and own hash; return it."""
    return read_event(data)[0]


def read_event(data: Any) -> tuple[Event, int]:
    """As event_from_dict, and the size of its canonical body (serialised once for both)."""
    event, size, _payload = read_event_text(data)
    return event, size


def read_event_text(data: Any) -> tuple[Event, int, str]:
    """As read_event, and the payload's canonical text (for storing it as it was hashed)."""
    if not isinstance(data, dict):
        raise EventRejected("Event must be a JSON object", code="bad_envelope")
    if len(data) != len(ENVELOPE_FIELDS) or not all(name in data for name in ENVELOPE_FIELDS):
        missing = [name for name in ENVELOPE_FIELDS if name not in data]
        extra = sorted(set(data) - set(ENVELOPE_FIELDS))
        raise EventRejected("Event envelope has missing fields %(missing)s or unknown fields "
                            "%(extra)s", code="bad_envelope", missing=missing, extra=extra)
    checks = (
        (isinstance(data["id"], str) and is_ulid(data["id"]), "id"),
        (isinstance(data["origin"], str) and 0 < len(data["origin"]) <= 64, "origin"),
        (type(data["seq"]) is int and data["seq"] >= 1, "seq"),
        (isinstance(data["type"], str), "type"),
        (type(data["version"]) is int, "version"),
        (isinstance(data["payload"], dict), "payload"),
        (isinstance(data["prev_hash"], str) and len(data["prev_hash"]) == 64, "prev_hash"),
        (isinstance(data["hash"], str) and len(data["hash"]) == 64, "hash"),
    )
    for ok, name in checks:
        if not ok:
            raise EventRejected("Event field %(name)s is malformed", field=name,
                                code="bad_envelope", name=name)
    try:
        HlcTimestamp.parse(data["hlc"] if isinstance(data["hlc"], str) else "")
    except ProtocolError:
        raise EventRejected("Event field %(name)s is malformed", field="hlc",
                            code="bad_envelope", name="hlc") from None
    validate_payload(data["type"], data["version"], data["payload"])
    event = Event(**{name: data[name] for name in ENVELOPE_FIELDS})
    payload = payload_json(event.payload)
    body = canonical_body(event, payload)
    if hashlib.sha256(body).hexdigest() != event.hash:
        raise ChainBroken("Event %(id)s does not match its hash", field="hash", id=event.id,
                          code="bad_hash")
    return event, len(body), payload


def verify_chain(events: Iterable[Event], prev_hash: str = GENESIS_HASH,
                 prev_seq: int = 0) -> None:
    """Check that one origin's events follow each other with no gap and an unbroken chain."""
    for event in events:
        if event.seq != prev_seq + 1:
            raise ChainBroken("Event %(id)s has sequence %(seq)s, expected %(expected)s",
                              field="seq", code="seq_gap", id=event.id, seq=event.seq,
                              expected=prev_seq + 1)
        if event.prev_hash != prev_hash:
            raise ChainBroken("Event %(id)s does not chain to the previous event",
                              field="prev_hash", id=event.id)
        if event.compute_hash() != event.hash:
            raise ChainBroken("Event %(id)s does not match its hash", field="hash",
                              code="bad_hash", id=event.id)
        prev_hash, prev_seq = event.hash, event.seq


def verify_held(events: Iterable[Event]) -> None:
    """Check the events a node holds of another origin, which may be only part of its log.

    A pharmacy holds only what its scope brings (a clinic's sequences 1, 2, 4, 6, ...), so
    gaps are expected: every event must match its hash, one sequence number names one event,
    and wherever two consecutive events are held (or the first), the chain must link.
    """
    prev: Event | None = None
    for event in sorted(events, key=lambda e: e.seq):
        if event.compute_hash() != event.hash:
            raise ChainBroken("Event %(id)s does not match its hash", field="hash",
                              code="bad_hash", id=event.id)
        if prev is not None and event.seq == prev.seq:
            raise ChainBroken("Events %(id)s and %(other)s share sequence %(seq)s",
                              field="seq", code="seq_duplicate", id=event.id, other=prev.id,
                              seq=event.seq)
        expected = (GENESIS_HASH if event.seq == 1 else
                    prev.hash if prev is not None and event.seq == prev.seq + 1 else None)
        if expected is not None and event.prev_hash != expected:
            raise ChainBroken("Event %(id)s does not chain to the previous event",
                              field="prev_hash", id=event.id)
        prev = event
