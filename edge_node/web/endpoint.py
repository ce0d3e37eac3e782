"""Declaring an API endpoint once: its route, who must be signed in, its body schema.

The same declaration validates requests and feeds the OpenAPI document, so the two never
drift apart.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, g, request
from jsonschema import Draft202012Validator

from sync_protocol.json_body import parse_json

from ..errors import NotSignedIn, ValidationFailed
from ..services.staff import actor_for_token
from .context import store

log = logging.getLogger(__name__)

CONTENT_REFUSED = ("The content breaks a rule beyond the schema (an identifier's check digit, "
                   "an unknown record, a slot already taken)")
# A prescription with five items and a long dosage text is a few kB; nothing needs more.
MAX_BODY_BYTES = 256 * 1024


@dataclass
class Endpoint:
    method: str
    rule: str
    summary: str
    body: dict[str, Any] | None
    # name -> description, or (description, JSON Schema of the value as really validated
    # [, required]): the OpenAPI document is the contract
    query: dict[str, str | tuple] = field(default_factory=dict)
    public: bool = False
    tag: str = ""
    status: int = 200  # the success status the view answers (201 created, 202 queued)
    # Why a well-formed request may still be refused (422) for its content: rules JSON Schema
    # cannot state (a PINFL's check digit, a free slot). Every operation with a body has one.
    refuses: str | None = None


REGISTRY: list[Endpoint] = []


def endpoint(bp: Blueprint, method: str, rule: str, *, summary: str,
             body: dict[str, Any] | None = None,
             query: dict[str, str | tuple] | None = None,
             public: bool = False, status: int = 200, refuses: str | None = None) -> Callable:
    if body is not None and refuses is None:
        refuses = CONTENT_REFUSED
    spec = Endpoint(method, f"{bp.url_prefix or ''}{rule}", summary, body, query or {},
                    public, bp.name, status, refuses)
    REGISTRY.append(spec)
    validator = Draft202012Validator(body) if body else None

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not public:
                g.actor = current_actor()
            if validator is not None:
                kwargs["data"] = _validated_body(validator)
            return view(*args, **kwargs)

        bp.add_url_rule(rule, view_func=wrapper, methods=[method])
        return wrapper

    return decorate


def current_actor():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise NotSignedIn("Sign in first: send Authorization: Bearer <token>")
    return actor_for_token(store(), header.removeprefix("Bearer ").strip())


def _validated_body(validator: Draft202012Validator) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise ValidationFailed("Request body is larger than %(limit)s bytes", field="body",
                               code="too_large", limit=MAX_BODY_BYTES)
    if not request.is_json:
        raise ValidationFailed("Request body must be a JSON object", field="body",
                               code="bad_json")
    data = parse_json(request.get_data(cache=True), max_bytes=MAX_BODY_BYTES)
    if not isinstance(data, dict):
        raise ValidationFailed("Request body must be a JSON object", field="body",
                               code="bad_json")
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            where = error.message.split("'")[1]
        elif error.validator == "additionalProperties":
            where = where or "body"
        raise ValidationFailed("Field %(where)s is invalid: %(detail)s", field=where or "body",
                               where=where or "body", detail=error.message[:200])
    return data


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**required, **(optional or {})},
            "required": sorted(required), "additionalProperties": False}


STR = {"type": "string", "maxLength": 400}
ID = {"type": "string", "minLength": 26, "maxLength": 26}
# Query values as the views really validate them (the OpenAPI document is the contract).
DAY_QUERY = {"type": "string", "format": "date"}
COUNT_QUERY = {"type": "string", "pattern": "^[0-9]{1,9}$"}
PINFL_QUERY = {"type": "string", "pattern": "^[0-9]{14}$"}
DOCUMENT_QUERY = {"type": "string", "pattern": "^[A-Z]{2}[0-9]{7}$"}
IDENTITY_REFUSED = ("Neither a PINFL nor a document given, or the PINFL's check digit, century "
                    "or date is wrong")
