"""The hub's OpenAPI document: the contract of its JSON API (GET /api/v1/openapi.json).

Written out here, beside the routes it describes: a test checks that every /api/v1 and
/sync/v1 route is in it, and schemathesis checks that the hub answers as it says (status
codes, error bodies, query values accepted as declared). The staff pages are HTML for
people and not part of it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint

from sync_protocol.conflicts import (
    ACKNOWLEDGED,
    OPEN,
    RESOLVED,
)
from sync_protocol.event_types import CONFLICT_KINDS
from sync_protocol.wire import (
    CLAIM_PATH,
    CLAIM_RELEASE_PATH,
    CLAIM_STATUS_PATH,
    PING_PATH,
    PULL_PATH,
    PUSH_PATH,
    TRUST_PATH,
)

from .context import respond

log = logging.getLogger(__name__)

bp = Blueprint("openapi", __name__)

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
COUNT = {"type": "string", "pattern": "^[0-9]{1,9}$"}  # whole numbers, as the views parse them
# Text values: no NUL character (PostgreSQL text cannot hold one; the hub refuses them, 400).
NO_NUL = "^[^\u0000]*$"
TEXT = {"type": "string", "maxLength": 200, "pattern": NO_NUL}
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL}
CONTENT_REFUSED = ("The content breaks a rule beyond the schema (a PINFL's check digit, an "
                   "unknown facility or patient, a pad overlapping another)")
DAY = {"type": "string", "format": "date"}


def _query(name: str, schema: dict[str, Any], description: str = "",
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "pattern": NO_NUL}}


def _operation(summary: str, *, status: int = 200, parameters: list | None = None,
               body: dict[str, Any] | None = None, security: str = "token",
               content_type: str = JSON) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {
            str(status): {"description": "OK", "content": {content_type: {"schema": {}}}},
            "4XX": {"description": "Refused", "content": {JSON: {"schema": ERROR}}},
            **({"400": {"description": CONTENT_REFUSED, "content": {JSON: {"schema": ERROR}}}}
               if body is not None else {}),
            # Busy: at most MAX_CONCURRENT_SYNCS at once (Retry-After)
            **({"503": {"description": "Busy", "content": {JSON: {"schema": ERROR}}}}
               if security == "node" else {}),
        },
    }
    if security:
        operation["security"] = [{security: []}]
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return operation


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


REVIEW = _object({"by": NAME, "note": {"type": "string", "minLength": 1, "maxLength": 2000}},
                 ("by", "note"))
PAD = _object({"facility_id": TEXT, "series": TEXT, "first_serial": {"type": "integer"},
               "last_serial": {"type": "integer"}, "allocated_by": TEXT},
              ("facility_id", "series", "first_serial", "last_serial", "allocated_by"))
REMOTE_REQUEST = {**_object({name: {"type": ["string", "null"], "maxLength": 2000} for name in
                             ("pinfl", "patient_id", "facility", "facility_id", "request_text",
                              "requested_by", "phone")}, ("request_text", "requested_by")),
                  "additionalProperties": False}
PUSH = _object({"node_id": TEXT, "events": {"type": "array", "items": {"type": "object"}}},
               ("node_id", "events"))
ULID = {"type": "string", "minLength": 26, "maxLength": 26, "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"}
CLAIM_ITEM = _object({"item_no": {"type": "integer", "minimum": 1},
                      "quantity": {"type": "integer", "minimum": 1}}, ("item_no", "quantity"))
CLAIM = _object({"prescription_id": ULID, "facility_id": TEXT,
                 "items": {"type": "array", "items": CLAIM_ITEM, "minItems": 1},
                 "code": {"type": "string", "maxLength": 100_000}},
                ("prescription_id", "facility_id", "items"))
CLAIM_STATUS = _object({"prescription_id": ULID, "code": {"type": "string",
                                                          "maxLength": 100_000}},
                       ("prescription_id",))
CLAIM_RELEASE = _object({"claim_id": {"type": "string", "minLength": 1, "maxLength": 64}},
                        ("claim_id",))
LIMIT = _query("limit", COUNT, "at most this many")
NODE = _query("node", TEXT, "a node id")


def document() -> dict[str, Any]:
    reconciliation = [_query("facility", NAME, "facility id or code", required=True),
                      _query("day", DAY, "YYYY-MM-DD, Tashkent; today if absent")]
    return {
        "openapi": "3.1.0",
        "info": {"title": "DMED Edge hub API", "version": "1"},
        "paths": {
            PUSH_PATH: {"post": _operation("A node pushes its events (signed)", body=PUSH,
                                           security="node")},
            PULL_PATH: {"get": _operation("A node pulls the events of its scope (signed)",
                                          security="node", parameters=[
                                              _query("after", COUNT, "hub position"),
                                              _query("limit", COUNT, "events per page"),
                                              _query("max_bytes", COUNT, "bytes per page")])},
            TRUST_PATH: {"get": _operation("The trust and revocation list (signed)",
                                           security="node")},
            CLAIM_PATH: {"post": _operation(
                "A pharmacy claims quantities of a prescription before it dispenses (signed): "
                "granted with an id and an expiry, or refused with where and when it was "
                "dispensed", body=CLAIM, security="node")},
            CLAIM_STATUS_PATH: {"post": _operation(
                "What remains of a prescription as the hub knows it (signed)",
                body=CLAIM_STATUS, security="node")},
            CLAIM_RELEASE_PATH: {"post": _operation(
                "A pharmacy gives back a claim it will not use (signed)", body=CLAIM_RELEASE,
                security="node")},
            PING_PATH: {"post": _operation("A signed no-op: authenticated and answered",
                                           security="node")},
            "/healthz": {"get": _operation("Is the hub up (database, projector)", security="")},
            "/api/v1/openapi.json": {"get": _operation("This document", security="")},
            "/api/v1/nodes": {"get": _operation("Every node's sync state, with refused "
                                                "requests in its name apart")},
            "/api/v1/refused-requests": {"get": _operation(
                "Refused sync requests by claimed node, source and reason", parameters=[LIMIT])},
            "/api/v1/quarantine": {"get": _operation("Refused events", parameters=[
                NODE, _query("all", {"enum": ["", "0", "1", "true", "false"]},
                             "1: resolved ones too"), LIMIT, _query("before", COUNT)])},
            "/api/v1/identity-conflicts": {"get": _operation(
                "Two devices presenting one identity", parameters=[NODE])},
            "/api/v1/conflicts": {"get": _operation("Conflicts, newest first", parameters=[
                _query("state", {"enum": [OPEN, ACKNOWLEDGED, RESOLVED]}),
                _query("kind", {"enum": list(CONFLICT_KINDS)}), _query("facility", TEXT),
                LIMIT, _query("before", COUNT)])},
            "/api/v1/conflicts/{conflict_id}": {"get": _operation(
                "One conflict with its events and reviews", parameters=[_path("conflict_id")])},
            "/api/v1/conflicts/{conflict_id}/{action}": {"post": _operation(
                "Acknowledge or resolve a conflict (signed with a name and a note)",
                body=REVIEW, parameters=[_path("conflict_id"), {
                    "name": "action", "in": "path", "required": True,
                    "schema": {"enum": ["acknowledge", "resolve"]}}])},
            "/api/v1/paper/pads": {
                "get": _operation("Paper prescription pads", parameters=[
                    _query("facility", TEXT)]),
                "post": _operation("Allocate a pad of paper serials to a facility", status=201,
                                   body=PAD)},
            "/api/v1/reconciliation": {"get": _operation(
                "Paper against electronic records for a facility and day",
                parameters=reconciliation)},
            "/api/v1/reconciliation.csv": {"get": _operation(
                "The same report as CSV", parameters=reconciliation, content_type="text/csv")},
            "/api/v1/remote-requests": {
                "get": _operation("Call-centre (1003) requests"),
                "post": _operation("Take a remote prescription request", status=201,
                                   body=REMOTE_REQUEST)},
            "/api/v1/remote-requests/{request_id}": {"get": _operation(
                "One call-centre request", parameters=[_path("request_id")])},
        },
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer",
                          "description": "DMED_HUB_API_TOKEN; without one, loopback only"},
                "node": {"type": "apiKey", "in": "header", "name": "X-DMED-Signature",
                         "description": "DMED-SYNC-1: the node's signature, certificate, "
                                        "time and nonce headers (sync_protocol."
                                        "request_signing)"},
            },
            "schemas": {"Error": {
                "type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message", "field"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": ["string", "null"]}}}}}},
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi():
    return respond(document())
