"""The hub's exception tree. Each leaf knows its HTTP status; the web layer renders it."""

from __future__ import annotations

from sync_protocol.errors import ProtocolError


class HubError(ProtocolError):
    code = "hub_error"
    http_status = 400


class NotFound(HubError):
    code = "not_found"
    http_status = 404


class Forbidden(HubError):
    code = "forbidden"
    http_status = 403


class Busy(HubError):
    """Too many syncs at once (DESIGN 7.8): the node backs off and retries."""

    code = "busy"
    http_status = 503


class HubNotInitialised(HubError):
    code = "hub_not_initialised"
    http_status = 503
