"""API: the node itself: status, the event log export, the OpenAPI document."""

from __future__ import annotations

import re

from flask import Blueprint, g, jsonify, request

from sync_protocol.event_types import SCHEMAS

from ..errors import ValidationFailed
from ..services import node_status
from .context import store, sync_agent
from .endpoint import COUNT_QUERY, REGISTRY, endpoint

bp = Blueprint("node", __name__, url_prefix="/api/v1")
# An export page the size a Raspberry Pi serves without a memory spike.
MAX_EXPORT_PAGE = 5000


@endpoint(bp, "GET", "/node/status", summary="Node identity, log head and queues", public=True)
def status():
    configured = sync_agent() is not None
    return jsonify(node_status.status(store(), configured))


@endpoint(bp, "GET", "/events", summary="Export the event log in order (admin)",
          query={"after": ("log position", COUNT_QUERY),
                 "limit": (f"at most {MAX_EXPORT_PAGE}", COUNT_QUERY)})
def export_events():
    g.actor.require("export_log")
    after = request.args.get("after", "0")
    limit = request.args.get("limit", "1000")
    if not (after.isdigit() and limit.isdigit()):
        raise ValidationFailed("after and limit must be whole numbers", field="after")
    events = store().events(after_position=int(after),
                            limit=min(int(limit), MAX_EXPORT_PAGE))
    return jsonify({"events": [e.to_dict() for e in events]})


@endpoint(bp, "GET", "/openapi.json", summary="This document", public=True)
def openapi():
    return jsonify(openapi_document())


def _query_parameter(name: str, declared: str | tuple) -> dict:
    """(description[, schema[, required]]): any string, optional, unless declared."""
    parts = (declared,) if isinstance(declared, str) else declared
    description = parts[0]
    schema = parts[1] if len(parts) > 1 else {"type": "string"}
    required = bool(parts[2]) if len(parts) > 2 else False
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}


def openapi_document() -> dict:
    paths: dict = {}
    for spec in REGISTRY:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", spec.rule)
        operation: dict = {
            "summary": spec.summary, "tags": [spec.tag],
            "operationId": f"{spec.method.lower()}_{path.strip('/').replace('/', '_')}",
            "responses": {str(spec.status): {"description": "OK"},
                          **({"422": {"description": spec.refuses, "content": {
                              "application/json": {"schema": {
                                  "$ref": "#/components/schemas/Error"}}}}}
                             if spec.refuses else {}),
                          "4XX": {"description": "Error",
                                  "content": {"application/json": {
                                      "schema": {"$ref": "#/components/schemas/Error"}}}}},
            "parameters": [
                *({"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", path)),
                *(_query_parameter(n, d) for n, d in spec.query.items()),
            ],
        }
        if not spec.public:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": spec.body}}}
        paths.setdefault(path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "DMED Edge node API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message", "field"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                   "field": {"type": ["string", "null"]}}}}},
                **{f"{name}.v{version}": schema for (name, version), schema in SCHEMAS.items()},
            },
        },
    }
