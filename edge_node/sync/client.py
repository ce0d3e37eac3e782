"""A signed HTTP client for the hub's sync API. Network trouble becomes HubUnreachable here,
at the boundary, so the agent deals in outcomes rather than in socket errors."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from sync_protocol import wire
from sync_protocol.claims import ClaimRequest
from sync_protocol.json_body import parse_json
from sync_protocol.request_signing import sign_request
from sync_protocol.timeutil import utc_now
from sync_protocol.trust_list import TrustList

from ..credentials import NodeCredentials
from ..errors import NodeError

log = logging.getLogger(__name__)

# A Raspberry Pi on a 3G modem: connecting should be quick, a 512 kB batch may take a while.
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
# A pull page is byte-bounded by the hub; the trust list rides along: generous, yet bounded.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# A claim is answered in milliseconds on a working link; past this the pharmacist is told the
# hub did not answer and may dispense offline (issue 13: about 1.5 s).
CLAIM_TIMEOUT_SECONDS = 1.5


class HubUnreachable(NodeError):
    code = "hub_unreachable"
    http_status = 503


class HubBusy(HubUnreachable):
    """The hub admits a bounded number of syncs; it said when to come back."""

    code = "hub_busy"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__("The hub is busy; retrying in %(seconds)s s", seconds=int(retry_after))


class BatchTooLarge(NodeError):
    code = "batch_too_large"


class HubRefused(NodeError):
    """The hub answered but refused the request (authentication, a malformed request)."""

    code = "hub_refused"
    http_status = 502


class CursorAhead(HubRefused):
    """Our pull cursor is past the hub's head: the hub was restored from a backup."""

    code = "cursor_ahead"


@dataclass
class HubClient:
    base_url: str
    credentials: NodeCredentials  # the key signs every request
    node_id: str
    session: requests.Session = field(default_factory=requests.Session)
    last_hub_time: datetime | None = None  # the hub's Date header: a check of our clock

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def push(self, events: list[dict]) -> wire.PushResponse:
        body, headers = wire.encode_body(wire.PushRequest(self.node_id, events).to_dict())
        data = self._send("POST", wire.PUSH_PATH, body, headers)
        return wire.PushResponse.from_dict(data)

    def pull(self, query: wire.PullQuery) -> wire.PullResponse:
        target = f"{wire.PULL_PATH}?{query.to_query_string()}"
        return wire.PullResponse.from_dict(self._send("GET", target, b"", {}))

    def trust_list(self) -> TrustList:
        return TrustList.from_dict(self._send("GET", wire.TRUST_PATH, b"", {}))

    # -- claims: a pharmacist waits at the counter, so the hub gets CLAIM_TIMEOUT_SECONDS --
    def claim(self, request: ClaimRequest) -> dict:
        return self._call(wire.CLAIM_PATH, request.to_dict())

    def claim_status(self, prescription_id: str, code: str | None = None) -> dict:
        return self._call(wire.CLAIM_STATUS_PATH,
                          ClaimRequest(prescription_id, None, (), code).to_dict())

    def release_claim(self, claim_id: str) -> dict:
        return self._call(wire.CLAIM_RELEASE_PATH, {"claim_id": claim_id})

    def ping(self) -> dict:
        return self._call(wire.PING_PATH, {})

    def _call(self, path: str, data: dict) -> Any:
        body = json.dumps(data, separators=(",", ":")).encode()
        return self._send("POST", path, body, {"Content-Type": wire.JSON_TYPE},
                          timeout=CLAIM_TIMEOUT_SECONDS)

    def _send(self, method: str, target: str, body: bytes, headers: dict[str, str],
              timeout: float | tuple[float, float] = (CONNECT_TIMEOUT_SECONDS,
                                                      READ_TIMEOUT_SECONDS)) -> Any:
        signed = sign_request(method, target, body, self.credentials.key, self.credentials.cert,
                              self.node_id, utc_now())
        try:
            response = self.session.request(
                method, self.base_url + target, data=body or None,
                headers={**headers, **signed, "Accept-Encoding": "gzip"}, timeout=timeout)
        except requests.Timeout as e:
            raise HubUnreachable("The hub did not answer in time") from e
        except requests.RequestException as e:
            raise HubUnreachable("The hub cannot be reached: %(error)s",
                                 error=type(e).__name__) from e
        self.last_hub_time = _date_header(response)
        if response.status_code == 413:
            raise BatchTooLarge("The hub refused the batch as too large")
        if response.status_code in (429, 503):
            raise HubBusy(_retry_after(response))
        if response.status_code >= 500:
            raise HubUnreachable("The hub failed (HTTP %(status)s)", status=response.status_code)
        try:
            data = parse_json(response.content, max_bytes=MAX_RESPONSE_BYTES)
        except ValueError as e:
            raise HubRefused("The hub answered with something that is not JSON") from e
        if response.status_code >= 400:
            error = (data or {}).get("error") or {}
            if error.get("code") == CursorAhead.code:
                raise CursorAhead("The hub is behind this node's cursor")
            raise HubRefused("The hub refused the request: %(reason)s %(detail)s",
                             reason=error.get("code", response.status_code),
                             detail=error.get("message", ""))
        return data


def _date_header(response: requests.Response) -> datetime | None:
    try:
        return parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None


def _retry_after(response: requests.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "30")))
    except ValueError:
        return 30.0
