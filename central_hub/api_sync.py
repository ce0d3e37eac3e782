"""The sync API nodes call: push, pull, trust list. Every request is signed by a node.

At most MAX_CONCURRENT_SYNCS requests are served at once (DESIGN 7.8); the others are
answered at once with 503 and Retry-After, before anything is read or verified.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring  # a JSON string, as json.dumps writes it
from typing import Any

from cryptography import x509
from flask import Blueprint, Response, g, request

from sync_protocol.errors import ProtocolError
from sync_protocol.request_signing import (
    HEADER_CERTIFICATE,
    HEADER_NODE,
    ClockSkew,
    NodeMismatch,
    RequestRefused,
    RevokedKey,
    UnknownKey,
    request_target,
    verify_request,
)
from sync_protocol.timeutil import to_instant
from sync_protocol.trust import NodeIdentity, kid_of
from sync_protocol.wire import (
    GZIP,
    GZIP_LEVEL,
    GZIP_MIN_BYTES,
    JSON_TYPE,
    PULL_PATH,
    PUSH_PATH,
    TRUST_PATH,
    PullQuery,
    PushRequest,
    decode_body,
)

from . import nodes
from .app import Hub, hub, respond
from .errors import Busy
from .routing import node_audiences
from .scope import PAGE_OVERHEAD_BYTES, CursorAhead, _feed_query, feed_head, node_facilities
from .storage import SQLITE, Storage

log = logging.getLogger(__name__)

bp = Blueprint("sync", __name__)

# Refusals shown on the claimed node's dashboard line: they are the node's own trouble to fix
# (its clock, its certificate). Others (a bad signature, a replay) may be a stranger's doing
# in the node's name, and are only logged.
NOTED_REFUSALS = (ClockSkew, RevokedKey, UnknownKey)


@bp.before_request
def admit():
    gate = hub().sync_gate
    if not gate.acquire(blocking=False):
        raise Busy("The hub is serving as many syncs as it can; retry after %(seconds)s "
                   "seconds", seconds=hub().config["RETRY_AFTER_SECONDS"])
    g.sync_gate = gate


@bp.teardown_request
def release(_error: BaseException | None) -> None:
    gate = g.pop("sync_gate", None)
    if gate is not None:
        gate.release()


def authenticate(current: Hub, body: bytes) -> tuple[NodeIdentity, str]:
    """The node that signed this request (and its certificate's key id), or a refusal."""
    current.trust.refresh()
    now = current.now()
    try:
        identity = verify_request(request.method,
                                  request_target(request.script_root + request.path,
                                                 request.query_string), body,
                                  request.headers, current.trust.trust_list, now,
                                  current.nonces.seen)
    except RequestRefused as e:
        claimed = request.headers.get(HEADER_NODE)
        log.info("refused %s %s from %s: %s", request.method, request.path, claimed, e.code)
        if claimed and isinstance(e, NOTED_REFUSALS):
            nodes.record_error(current.storage, claimed[:64], e.code, e.text, to_instant(now))
        raise
    cert = x509.load_der_x509_certificate(base64.b64decode(request.headers[HEADER_CERTIFICATE]))
    current.trust.learn(cert)
    kid = kid_of(cert).hex()
    if current.known_nodes.get(identity.node_id) != kid:  # first contact (of this process)
        with current.storage.transaction(exclusive=False) as tx:
            nodes.record_contact(tx, identity, kid, to_instant(now))
        current.known_nodes[identity.node_id] = kid
    return identity, kid


@contextmanager
def noting_errors(current: Hub, node: NodeIdentity) -> Iterator[None]:
    """Errors after authentication are shown on the node's dashboard line."""
    try:
        yield
    except ProtocolError as e:
        nodes.record_error(current.storage, node.node_id, e.code, e.text,
                           to_instant(current.now()))
        raise


@bp.post(PUSH_PATH)
def push():
    current = hub()
    body = request.get_data(cache=False)
    node, kid = authenticate(current, body)
    with noting_errors(current, node):
        data = decode_body(body, request.headers.get("Content-Encoding"),
                           current.config["MAX_BODY_BYTES"])
        batch = PushRequest.from_dict(data)
        if batch.node_id != node.node_id:
            raise NodeMismatch("The batch names node %(claimed)s but was signed by %(actual)s",
                               field="node_id", claimed=batch.node_id, actual=node.node_id)
        result = current.ingestor.push(node, batch.events, kid=kid)
    return respond(result.to_dict())


@bp.get(PULL_PATH)
def pull():
    current = hub()
    node, _kid = authenticate(current, request.get_data(cache=False))
    with noting_errors(current, node):
        query = PullQuery.from_params(request.args)
        page = pull_body(current.storage, node, query, current.now())
    nodes.record_pull(current.storage, node.node_id, cursor=page.next, synced=not page.more,
                      count=page.count, now=to_instant(current.now()))
    return respond_body(page.body)


@bp.get(TRUST_PATH)
def trust():
    current = hub()
    authenticate(current, request.get_data(cache=False))
    return respond(current.trust.trust_list.to_dict())


# -- pull pages, serialised once -----------------------------------------------------------

@dataclass(frozen=True)
class PullBody:
    body: bytes  # the page as compact JSON: what PullResponse.to_dict() would encode to
    count: int
    next: int
    more: bool


# The event envelope's columns, in the order Event.to_dict() writes them.
EVENT_JSON = ('{"position":%d,"event":{"id":%s,"origin":%s,"seq":%d,"hlc":%s,"type":%s,'
              '"version":%d,"payload":%s,"prev_hash":%s,"hash":%s}}')


def pull_body(storage: Storage, node: NodeIdentity, query: PullQuery,
              now: datetime) -> PullBody:
    """central_hub.scope.pull_page, encoded as it is cut: the same scope, events, cursor and
    byte bound, and the same bytes, but each event is encoded once, from its stored payload
    (SQLite's json() compacts the stored text), instead of being decoded, encoded to be
    measured, and encoded again to be sent."""
    with storage.reader() as tx:
        head = feed_head(tx)
        if query.after > head:
            raise CursorAhead("Cursor %(cursor)s is past the hub's head %(head)s; pull again "
                              "from 0", field="after", cursor=query.after, head=head)
        audiences = node_audiences(node, node_facilities(tx, node))
        union, params = _feed_query(audiences, node.node_id, query.after, head,
                                    query.limit + 1, to_instant(now), "id, position")
        payload = "json(e.payload)" if tx.dialect == SQLITE else "e.payload"
        rows = tx.query(
            f"SELECT d.id AS delivery_id, e.position, e.id, e.origin, e.seq, e.hlc, e.type,"  # noqa: S608 - fixed fragments
            f" e.version, {payload} AS payload, e.prev_hash, e.hash FROM ({union}) AS d"
            " JOIN events e ON e.position = d.position ORDER BY d.id LIMIT ?",
            (*params, query.limit + 1))
    items: list[bytes] = []
    seen: set[int] = set()
    size, last, more = PAGE_OVERHEAD_BYTES, query.after, False
    for index, row in enumerate(rows):
        if index == query.limit:
            more = True
            break
        if row["position"] in seen:  # one event, two of the node's audiences
            last = row["delivery_id"]
            continue
        item = _event_json(row)
        if items and size + len(item) + 1 > query.max_bytes:
            more = True
            break
        items.append(item)
        seen.add(row["position"])
        size += len(item) + 1
        last = row["delivery_id"]
    cursor = last if more else head
    body = b'{"events":[%s],"next":%d,"head":%d,"more":%s}' % (
        b",".join(items), cursor, head, b"true" if more else b"false")
    return PullBody(body, len(items), cursor, more)


def _event_json(row: dict[str, Any]) -> bytes:
    payload = row["payload"]
    if not isinstance(payload, str):  # PostgreSQL hands JSONB over decoded
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return (EVENT_JSON % (
        row["position"], encode_basestring(row["id"]), encode_basestring(row["origin"]),
        row["seq"], encode_basestring(row["hlc"]), encode_basestring(row["type"]),
        row["version"], payload, encode_basestring(row["prev_hash"]),
        encode_basestring(row["hash"]))).encode()


def respond_body(body: bytes) -> Response:
    """central_hub.app.respond for a body already encoded."""
    response = Response(body, mimetype=JSON_TYPE)
    response.vary.add("Accept-Encoding")
    if len(body) >= GZIP_MIN_BYTES and GZIP in request.accept_encodings:
        response.set_data(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))
        response.headers["Content-Encoding"] = GZIP
    return response
