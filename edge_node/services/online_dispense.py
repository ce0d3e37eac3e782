"""Dispensing with the hub (issue 13): online, claim first; offline, bounded and honest.

Online, a dispense claims its quantity at the hub (sync_protocol.claims) and is recorded as
online-claimed, carrying the claim id. The hub gets CLAIM_TIMEOUT_SECONDS to answer; past that
the pharmacist is told, and may dispense offline: the event is marked offline, and what may be
handed over of the item without the hub is capped per drug class (OFFLINE_FILLS_* settings).
A node whose last successful sync is older than STALE_SYNC_SECONDS does not know what other
pharmacies dispensed since, and its verdicts say so (issue 12.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync_protocol.claims import ClaimRequest
from sync_protocol.errors import ProtocolError
from sync_protocol.timeutil import utc_now

from ..catalogue import Catalogue, UnknownDrug
from ..errors import Conflict, NodeError
from ..store import NodeStore
from ..sync.agent import sync_status
from ..sync.client import HubClient, HubRefused, HubUnreachable
from . import dispensing
from .access import Actor

log = logging.getLogger(__name__)

# Past this since the last successful sync, dispenses elsewhere are "not known" (the agent
# syncs every 30 s; a few minutes means several missed rounds, issue 12.2).
STALE_SYNC_SECONDS = 180


class HubSilent(NodeError):
    """The hub did not answer the claim in time: the pharmacist may dispense offline."""

    code = "hub_timeout"
    http_status = 504


class ClaimRefused(Conflict):
    """The hub refused the claim: dispensed (or claimed) elsewhere, or cancelled."""

    code = "claim_refused"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        where = latest_elsewhere(answer)
        if where:
            super().__init__("The hub refused: dispensed at %(where)s at %(when)s",
                             field="quantity", where=where["facility_name"],
                             when=where["when"])
        else:
            super().__init__("The hub refused: %(reason)s", field="quantity",
                             reason=answer.get("reason"))


def latest_elsewhere(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The latest dispense or held claim the hub named: where and when, for the refusal."""
    seen = [{"facility_name": d["facility_name"], "when": d["dispensed_at"], "claim": False}
            for d in answer.get("dispensed", [])]
    seen += [{"facility_name": c["facility_name"], "when": c["granted_at"], "claim": True}
             for c in answer.get("claims", [])]
    return max(seen, key=lambda s: s["when"]) if seen else None


@dataclass(frozen=True)
class HubView:
    """What the counter shows about the hub for one prescription."""

    configured: bool  # this node has a hub
    fresh: bool  # its last sync is recent: dispenses elsewhere are known up to then
    last_sync_at: str | None
    answer: dict[str, Any] | None = None  # the hub's status of the prescription, if asked
    silent: bool = False  # asked, and the hub did not answer in time


def freshness(store: NodeStore, configured: bool,
              now: datetime | None = None) -> tuple[bool, str | None]:
    status = sync_status(store, configured)
    age = status["seconds_since_success"]
    fresh = bool(status["online"] and age is not None and age <= STALE_SYNC_SECONDS)
    return fresh, status["last_success_at"]


def hub_view(store: NodeStore, client: HubClient | None, prescription_id: str,
             code: str | None) -> HubView:
    fresh, last = freshness(store, client is not None)
    if client is None:
        return HubView(False, fresh, last)
    try:
        answer = client.claim_status(prescription_id, code)
    except (HubUnreachable, HubRefused) as e:
        log.info("hub silent on status of %s: %s", prescription_id, e.code)
        return HubView(True, False, last, silent=True)
    return HubView(True, fresh, last, answer=answer)


def offline_fills(config: dict[str, Any], inn: str) -> int:
    """The drug class's offline bound in fills (0: the whole prescription)."""
    try:
        antibacterial = Catalogue.load().get(inn).antibacterial
    except UnknownDrug:
        antibacterial = True  # a drug the catalogue does not know gets the strictest bound
    key = "OFFLINE_FILLS_ANTIBACTERIAL" if antibacterial else "OFFLINE_FILLS_OTHER"
    return int(config.get(key) or 0)


def dispense_with_hub(store: NodeStore, actor: Actor, client: HubClient | None, *,
                      config: dict[str, Any], prescription_id: str, item_no: int,
                      quantity: Any, product: str, batch: str, expiry: str,
                      code: str | None = None, offline: bool | None = None,
                      now: datetime | None = None) -> dict:
    """Claim then dispense (online), or dispense offline within the bound.

    `offline` None decides as the counter's verdict does: offline when the node is known
    offline or its last sync is stale (then the hub is not waited for), else online."""
    actor.require("dispense")
    now = now or utc_now()
    if offline is None:
        offline = client is not None and not freshness(store, True)[0]
    fields = {"prescription_id": prescription_id, "item_no": item_no, "quantity": quantity,
              "product": product, "batch": batch, "expiry": expiry, "now": now}
    if client is None or offline:
        state = next((s for s in dispensing.item_states(store.reader(), prescription_id, now)
                      if s["item_no"] == item_no), None)
        bound = offline_fills(config, state["inn"]) if state else 0
        return dispensing.dispense(store, actor, facility_id=store.facility_id,
                                   offline_fills=bound, **fields)
    dispensing.checked_fields(quantity=quantity, product=product, batch=batch,
                              expiry=expiry, now=now)  # nothing is claimed for a typo
    state = next((s for s in dispensing.item_states(store.reader(), prescription_id, now)
                  if s["item_no"] == item_no), None)
    if state is not None and quantity > state["remaining_in_fill"]:
        history = dispensing.dispense_history(store.reader(), prescription_id)
        if state["remaining_in_fill"] == 0 and history:  # say where and when, as the hub does
            raise Conflict("Already dispensed at %(where)s at %(when)s", field="quantity",
                           code="already_dispensed", where=history[-1]["facility_name"],
                           when=history[-1]["dispensed_at"])
        raise Conflict("Only %(remaining)s remain of this fill; %(asked)s were asked",
                       field="quantity", code="more_than_remains",
                       remaining=state["remaining_in_fill"], asked=quantity)
    asked = ClaimRequest(prescription_id, store.facility_id, ((item_no, quantity),), code)
    try:
        answer = client.claim(asked)
    except (HubUnreachable, HubRefused) as e:
        raise HubSilent("The hub did not answer in time. You may dispense offline: dispensing"
                        " at other pharmacies since the last sync is not known",
                        field="quantity") from e
    if not answer.get("granted"):
        raise ClaimRefused(answer)
    try:
        return dispensing.dispense(store, actor, facility_id=store.facility_id,
                                   claim_id=answer["claim_id"], **fields)
    except ProtocolError:
        release(client, answer["claim_id"])  # nothing was handed over: free it at once
        raise


def release(client: HubClient | None, claim_id: str) -> bool:
    """Release a claim (the pharmacist cancelled); an unreachable hub lets it expire."""
    if client is None:
        return False
    try:
        return bool(client.release_claim(claim_id).get("released"))
    except (HubUnreachable, HubRefused) as e:
        log.info("claim %s not released (%s): it expires by itself", claim_id, e.code)
        return False
