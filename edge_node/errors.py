"""The node's exception tree. Each leaf knows its HTTP status; the web layer renders it."""

from __future__ import annotations

from sync_protocol.errors import ProtocolError


class NodeError(ProtocolError):
    code = "node_error"
    http_status = 400


class ValidationFailed(NodeError):
    code = "invalid"
    http_status = 422


class FieldErrors(ValidationFailed):
    """Several fields of one form are wrong: carries the first as its own code, message and
    field (what an API client reads) and every one in ``errors`` (a form shows them all)."""

    def __init__(self, errors: list[ProtocolError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.message, field=first.field, code=first.code, **first.params)


class NotFound(NodeError):
    code = "not_found"
    http_status = 404


class Conflict(NodeError):
    """The request is well formed but the state forbids it (slot taken, already cancelled)."""

    code = "conflict"
    http_status = 409


class NotSignedIn(NodeError):
    code = "not_signed_in"
    http_status = 401


class Forbidden(NodeError):
    code = "forbidden"
    http_status = 403


class TooManyAttempts(NodeError):
    code = "too_many_attempts"
    http_status = 429


class NodeNotInitialised(NodeError):
    code = "node_not_initialised"
    http_status = 503
