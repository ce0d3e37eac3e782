"""The claims API (sync_protocol.claims) and a signed no-op, both signed like push and pull.

Claims are not behind the sync gate: a claim is one short transaction a pharmacist waits
for at the counter, and a busy hub answering 503 would only push the pharmacy offline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, request

from sync_protocol.claims import ClaimInvalid, ClaimRequest
from sync_protocol.json_body import BadJson, parse_json
from sync_protocol.wire import CLAIM_PATH, CLAIM_RELEASE_PATH, CLAIM_STATUS_PATH, PING_PATH

from .. import claims
from .api_sync import authenticate, noting_errors
from .context import hub, respond

log = logging.getLogger(__name__)

bp = Blueprint("claims", __name__)
# A claim is a few hundred bytes; a scanned code a few thousand digits.
MAX_CLAIM_BODY_BYTES = 16 * 1024


def _json(body: bytes) -> object:
    if len(body) > MAX_CLAIM_BODY_BYTES:
        raise ClaimInvalid("A claim is at most %(max)s bytes", max=MAX_CLAIM_BODY_BYTES)
    try:
        return parse_json(body, max_bytes=MAX_CLAIM_BODY_BYTES)
    except BadJson as e:
        raise ClaimInvalid("The body is not JSON") from e


@contextmanager
def _signed_claim() -> Iterator[tuple[Any, Any, object]]:
    """The hub, the node that signed the request and its JSON body; errors after the
    signature checked go on the node's line (api_sync.noting_errors)."""
    current = hub()
    body = request.get_data(cache=False)
    node, _kid = authenticate(current, body)
    with noting_errors(current, node):
        yield current, node, _json(body)


@bp.post(CLAIM_PATH)
def claim():
    with _signed_claim() as (current, node, data):
        answer = claims.claim(current.storage, node, ClaimRequest.from_dict(data),
                              current.now(), current.trust.trust_list)
    return respond(answer)


@bp.post(CLAIM_STATUS_PATH)
def claim_status():
    with _signed_claim() as (current, node, data):
        answer = claims.status(current.storage, node,
                               ClaimRequest.from_dict(data, status_only=True), current.now(),
                               current.trust.trust_list)
    return respond(answer)


@bp.post(CLAIM_RELEASE_PATH)
def claim_release():
    with _signed_claim() as (current, node, data):
        claim_id = data.get("claim_id") if isinstance(data, dict) else None
        if not isinstance(claim_id, str) or not 1 <= len(claim_id) <= 64:
            raise ClaimInvalid("claim_id is required", field="claim_id")
        released = claims.release(current.storage, node, claim_id, current.now())
    return respond({"released": released})


@bp.post(PING_PATH)
def ping():
    """Authenticated and answered, nothing else: the bare reference for bench_claims."""
    authenticate(hub(), request.get_data(cache=False))
    return respond({"ok": True})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
