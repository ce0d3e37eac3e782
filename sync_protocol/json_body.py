"""The one way JSON from outside is read: bounded in size and in nesting depth.

``json.loads`` recurses once per nested array or object, so a body of a few thousand ``[``
raises ``RecursionError`` (a server error, and a stack at risk) instead of a clear refusal.
Every body of the node's API and screens, every signed sync body at the hub and every file a
CLI reads goes through ``parse_json``: too large, too deep or not JSON is a ``BadJson`` with a
stable code, never a crash.
"""

from __future__ import annotations

import json
from array import array
from itertools import accumulate
from typing import Any

from .errors import ProtocolError

# Our deepest legitimate document (a sync batch: body > events > event > payload > items >
# item > field) is under ten levels; 64 leaves room for any schema we may add.
MAX_DEPTH = 64
# Files and API bodies are small; sync bodies pass their own, larger limit.
MAX_BYTES = 1024 * 1024

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
# Openers become +1 and closers -1 (as signed bytes).
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class BadJson(ProtocolError, ValueError):
    """Input that is not a JSON document we accept. A ValueError, as json's own errors are."""

    code = "bad_json"
    http_status = 400


class JsonTooLarge(BadJson):
    code = "too_large"
    http_status = 413


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest past `limit` (brackets inside strings ignored)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # fewer openers than the limit: no nesting can exceed it (the usual case)
    # Escaped backslashes and quotes go first (C-speed replaces, left to right as JSON reads
    # them), then everything but brackets and quotes, then whole strings (every other piece
    # between quotes): what is left is the structure alone.
    if b"\\" in raw:  # most bodies have no escapes at all: skip two passes
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(None, _NOT_STRUCTURE)
    outside_strings = b"".join(structure.split(b'"')[::2])
    brackets = outside_strings.translate(_DEPTH_STEP)
    return max(accumulate(array("b", brackets)), default=0) > limit


def parse_json(data: bytes | str, *, max_bytes: int = MAX_BYTES,
               max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text, refusing it (BadJson) when too large, too deep or malformed."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise JsonTooLarge("The JSON document is larger than %(limit)s bytes", field="body",
                           limit=max_bytes)
    if too_deep(raw, max_depth):
        raise BadJson("The JSON document nests more than %(limit)s levels deep", field="body",
                      code="too_deep", limit=max_depth)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadJson("The JSON document is not valid: %(detail)s", field="body",
                      detail=str(e)[:120]) from e
