"""Claims: a pharmacy online asks the hub for quantities of a prescription before it dispenses.

Claim    POST /sync/v1/claims          {"prescription_id", "facility_id", "items": [{"item_no",
                                        "quantity"}], "code"?}
         -> {"granted": true, "claim_id", "expires_at", "items", "remaining": [...]}
         or {"granted": false, "reason", "dispensed": [{"facility_name", "dispensed_at",
             "item_no", "quantity"}], "claims": [...], "remaining": [...]}
Status   POST /sync/v1/claims/status   {"prescription_id", "code"?} -> the same, claiming nothing
Release  POST /sync/v1/claims/release  {"claim_id"} -> {"released": bool}

`code` is the scanned QR digits: the hub judges a prescription it has not received yet (its
clinic offline) from the signed code. The fill arithmetic both ends use is `room_in_fill`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

log = logging.getLogger(__name__)

# A claim is held this long: enough to type the batch and expiry and press Dispense, short
# enough that a claim the pharmacist walked away from frees the prescription soon.
CLAIM_TTL_SECONDS = 300
# A prescription has at most 5 items (event_types); a QR code at most a few thousand digits.
MAX_ITEMS = 5
MAX_CODE_CHARS = 8000
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")

# The origin of the hub's own events (central_hub.rights.HUB_ORIGIN): PrescriptionClaimed.
HUB_ORIGIN = "hub:central"
GRANTED = "granted"
# Refusal reasons, stable codes the node words for the pharmacist.
NOTHING_LEFT = "nothing_left"  # dispensed (or claimed) elsewhere
MORE_THAN_REMAINS = "more_than_remains"
CANCELLED = "cancelled"
OUTSIDE_VALIDITY = "outside_validity"
UNKNOWN_PRESCRIPTION = "unknown_prescription"
UNKNOWN_ITEM = "unknown_item"


class ClaimInvalid(ProtocolError):
    code = "claim_invalid"
    http_status = 400


def _ulid(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not ULID_RE.match(value):
        raise ClaimInvalid("%(name)s must be an id", field=name, name=name)
    return value


@dataclass(frozen=True)
class ClaimRequest:
    prescription_id: str
    facility_id: str | None
    items: tuple[tuple[int, int], ...]  # (item_no, quantity)
    code: str | None = None

    @classmethod
    def from_dict(cls, data: Any, *, status_only: bool = False) -> ClaimRequest:
        if not isinstance(data, dict):
            raise ClaimInvalid("A claim is a JSON object")
        rx = _ulid(data, "prescription_id")
        code = data.get("code")
        if code is not None and (not isinstance(code, str) or len(code) > MAX_CODE_CHARS):
            raise ClaimInvalid("code must be the scanned digits", field="code")
        if status_only:
            return cls(rx, None, (), code)
        items = data.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise ClaimInvalid("items must list 1 to %(max)s items", field="items",
                               max=MAX_ITEMS)
        parsed: dict[int, int] = {}
        for item in items:
            no, qty = (item.get("item_no"), item.get("quantity")) if isinstance(item, dict) \
                else (None, None)
            if type(no) is not int or type(qty) is not int or not 1 <= no <= MAX_ITEMS \
                    or qty < 1 or no in parsed:
                raise ClaimInvalid("Each item needs an item_no (1-5, once) and a quantity of "
                                   "at least 1", field="items")
            parsed[no] = qty
        return cls(rx, _ulid(data, "facility_id"), tuple(sorted(parsed.items())), code)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prescription_id": self.prescription_id}
        if self.facility_id:
            out["facility_id"] = self.facility_id
        if self.items:
            out["items"] = [{"item_no": n, "quantity": q} for n, q in self.items]
        if self.code:
            out["code"] = self.code
        return out


def room_in_fill(quantity: int, fills: int, taken: int) -> int:
    """How much may still be handed over in the current fill, `taken` units being dispensed
    or claimed already. A fill is never split across two claims of different fills."""
    total = quantity * fills
    if taken >= total:
        return 0
    return quantity - taken % quantity


def remaining_total(quantity: int, fills: int, taken: int) -> int:
    return max(0, quantity * fills - taken)
