"""What every hub view shares: the per-app `Hub` services (`hub()`), and JSON answers
(`respond`). The factory (web.app) and the blueprints import this module, never each other."""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Response, current_app, request

from sync_protocol.wire import GZIP, GZIP_LEVEL, GZIP_MIN_BYTES, JSON_TYPE, dumps

from ..ingest import Ingestor
from ..nonces import NonceStore
from ..storage import Storage
from ..trust_store import TrustStore

log = logging.getLogger(__name__)

EXTENSION = "dmed_hub"


@dataclass
class Hub:
    """Everything a request needs, built once per app."""

    storage: Storage
    trust: TrustStore
    nonces: NonceStore
    ingestor: Ingestor
    sync_gate: threading.BoundedSemaphore
    clock: Callable[[], datetime]
    config: dict[str, Any]
    known_nodes: dict[str, str] = field(default_factory=dict)  # node id -> key id registered

    def now(self) -> datetime:
        return self.clock()


def hub() -> Hub:
    return current_app.extensions[EXTENSION]


def respond(data: Any, status: int = 200) -> Response:
    """JSON, gzip-compressed when the client accepts it and it is worth it."""
    return respond_bytes(dumps(data), status)


def respond_bytes(body: bytes, status: int = 200) -> Response:
    """`respond` for JSON already encoded."""
    response = Response(body, status=status, mimetype=JSON_TYPE)
    response.vary.add("Accept-Encoding")
    if len(body) >= GZIP_MIN_BYTES and GZIP in request.accept_encodings:
        response.set_data(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))
        response.headers["Content-Encoding"] = GZIP
    return response


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}
