"""How the counter words and colours each verdict of dispensing.verdict_for.

A pharmacist acts on the colour before reading: green means hand over, amber means something
can be done here (wait, confirm the clock, check the date), red means do not hand over.
"""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from edge_node.services.dispensing import VERDICTS, Verdict
from edge_node.services.online_dispense import HubView, latest_elsewhere

from .common import fmt_datetime

log = logging.getLogger(__name__)

OK, WARN, BAD = "ok", "warn", "bad"

# code -> (tone, headline, what to do). Explanations may use %(when)s (a Tashkent time).
WORDS = {
    "valid": (OK, _l("Valid"), _l("Check the PINFL against the ID card, then dispense.")),
    "partly_dispensed": (OK, _l("Valid, partly dispensed"),
                         _l("Dispense what remains (shown per medicine).")),
    "fill_too_early": (WARN, _l("Too early for the next fill"),
                       _l("The next fill is allowed from %(when)s.")),
    "already_dispensed": (WARN, _l("Already dispensed"),
                          _l("Everything on this prescription has been handed over.")),
    "expired": (BAD, _l("Expired"), _l("It expired on %(when)s: do not dispense.")),
    "not_yet_valid": (WARN, _l("Not valid yet"),
                      _l("It is valid from %(when)s: do not dispense before then.")),
    "cancelled": (BAD, _l("Cancelled"), _l("The doctor cancelled it: do not dispense.")),
    "wrong_patient": (BAD, _l("Wrong patient"),
                      _l("The PINFL typed from the ID card is not the prescription's: do not"
                         " dispense.")),
    "revoked_key": (BAD, _l("Revoked key"),
                    _l("Signed by a key that was revoked: do not dispense.")),
    "untrusted_key": (BAD, _l("Unknown signer"),
                      _l("Signed by a key this node does not trust: do not dispense.")),
    "forged": (BAD, _l("Forged"),
               _l("The code is forged or damaged: do not dispense. Ask the patient to show"
                  " the code again or look it up by ID card.")),
    "not_a_prescription": (BAD, _l("Not a prescription"),
                           _l("This code is not a prescription. Scan the prescription's QR"
                              " code.")),
    "clock_unverified": (WARN, _l("Confirm the date and time"),
                         _l("This terminal's clock is not confirmed, so validity cannot be"
                            " judged. Check the date and time below against your phone or"
                            " watch, confirm them, and the verdict appears.")),
}
# The instant a verdict's explanation names, from the service's params or the prescription.
WHEN = {"fill_too_early": "next_fill", "expired": "expires", "not_yet_valid": "not_before"}

if set(WORDS) != set(VERDICTS):  # a new verdict must get its words before it reaches a screen
    raise RuntimeError(f"verdict words out of step: {sorted(set(VERDICTS) ^ set(WORDS))}")


# Issue 12.2: valid here, but the node cannot know what other pharmacies did since its sync.
NOT_KNOWN = (_l("Valid here"),
             _l("Dispensing at other pharmacies since %(when)s is not known. Dispensing now is"
                " recorded as offline and reviewed."))
HUB_SILENT = _l("The hub did not answer in time.")
NEVER_SYNCED = _l("the first sync")
DISPENSED_AT = _l("Dispensed at %(where)s on %(when)s.")
CLAIMED_AT = _l("Being dispensed at %(where)s (claimed on %(when)s).")
HUB_DISPENSED = (_l("Already dispensed elsewhere"),
                 _l("The hub says nothing remains: do not dispense."))
HUB_CANCELLED = (_l("Cancelled"), _l("The hub says the doctor cancelled it: do not dispense."))
ONLINE, OFFLINE, LOCAL = "online", "offline", "local"


def describe(verdict: Verdict, hub: HubView | None = None) -> dict:
    """The verdict's colour and words, with what the hub says when the node has one.

    mode: "online" (the hub answered: Dispense claims first), "offline" (a hub is configured
    but not reachable or not synced lately: amber, dispenses recorded offline) or "local"
    (a stand-alone node)."""
    tone, headline, explanation = WORDS[verdict.code]
    instant = verdict.params.get(WHEN.get(verdict.code, ""))
    text = str(explanation)  # translated now, in the reader's language
    if "%(when)s" in text:
        text = text % {"when": fmt_datetime(instant) if instant else "—"}
    may = verdict.may_dispense
    mode = LOCAL if hub is None or not hub.configured else (
        ONLINE if hub.answer is not None else OFFLINE)
    hub_left: dict[int, int] = {}
    if hub is not None and hub.answer is not None:
        hub_left = {r["item_no"]: r["room_in_fill"] for r in hub.answer["remaining"]}
    if may and hub is not None and hub.answer is not None:
        if hub.answer["cancelled"]:
            tone, may, headline, text = BAD, False, str(HUB_CANCELLED[0]), str(HUB_CANCELLED[1])
        elif hub.answer["prescription_known"] and not any(hub_left.values()):
            tone, may, headline = WARN, False, str(HUB_DISPENSED[0])
            text = " ".join((str(HUB_DISPENSED[1]), where_when(hub.answer)))
    elif may and mode == OFFLINE:
        tone, headline = WARN, str(NOT_KNOWN[0])
        since = fmt_datetime(hub.last_sync_at) if hub.last_sync_at else str(NEVER_SYNCED)
        text = str(NOT_KNOWN[1]) % {"when": since}
        if hub.silent:
            text = f"{HUB_SILENT} {text}"
    elif verdict.code == "already_dispensed":
        text = " ".join(t for t in (text, where_when({"dispensed": verdict.history,
                                                       "claims": verdict.claims})) if t)
    return {"code": verdict.code, "tone": tone, "headline": str(headline), "text": text,
            "may_dispense": may, "mode": mode, "hub_left": hub_left}


def where_when(answer: dict) -> str:
    """ "Dispensed at <pharmacy> on <Tashkent time>." for the latest dispense or claim."""
    latest = latest_elsewhere(answer)
    if latest is None:
        return ""
    words = CLAIMED_AT if latest["claim"] else DISPENSED_AT
    return str(words) % {"where": latest["facility_name"], "when": fmt_datetime(latest["when"])}
