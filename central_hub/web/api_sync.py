"""The sync API nodes call: push, pull, trust list. Every request is signed by a node.

At most MAX_CONCURRENT_SYNCS requests are served at once (DESIGN 7.8); the others are
answered at once with 503 and Retry-After, before anything is read or verified.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography import x509
from flask import Blueprint, g, request

from sync_protocol.certificates import NodeIdentity, kid_of
from sync_protocol.errors import ProtocolError
from sync_protocol.request_signing import (
    HEADER_CERTIFICATE,
    HEADER_NODE,
    NodeMismatch,
    RequestRefused,
    request_target,
    verify_request,
)
from sync_protocol.timeutil import to_instant
from sync_protocol.wire import (
    PULL_PATH,
    PUSH_PATH,
    TRUST_PATH,
    PullQuery,
    PushRequest,
    decode_body,
)

from .. import nodes, refusals
from ..errors import Busy
from ..scope import pull_body
from . import metrics
from .context import Hub, hub, respond, respond_bytes

log = logging.getLogger(__name__)

bp = Blueprint("sync", __name__)


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
        # Every refusal is counted apart; only one proven to come from the node itself (its
        # clock, its revoked or expired certificate) goes on that node's record.
        refusals.record(current.storage, request.headers.get(HEADER_NODE),
                        request.remote_addr, e.code, to_instant(now))
        if e.identity is not None:
            nodes.record_error(current.storage, e.identity.node_id, e.code, e.text,
                               to_instant(now))
        raise
    g.authenticated_node = identity.node_id  # what the monitoring history may name
    cert = x509.load_der_x509_certificate(base64.b64decode(request.headers[HEADER_CERTIFICATE]))
    current.trust.learn(cert)
    kid = kid_of(cert).hex()
    if current.known_nodes.get(identity.node_id) != kid:  # first contact (of this process)
        with current.storage.transaction() as tx:  # the writer lock: see record_contact
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
        metrics.count_push(result)
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
    metrics.note_pulled(page.count)
    return respond_bytes(page.body)


@bp.get(TRUST_PATH)
def trust():
    current = hub()
    authenticate(current, request.get_data(cache=False))
    return respond(current.trust.trust_list.to_dict())
