"""The node's exception tree. Each leaf knows its HTTP status; the web layer renders it."""

from __future__ import annotations

from sync_protocol.errors import ProtocolError


class NodeError(ProtocolError):
    code = "node_error"
    http_status = 400


class ValidationFailed(NodeError):
    code = "invalid"
    http_status = 422


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
