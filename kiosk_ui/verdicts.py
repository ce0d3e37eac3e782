"""How the counter words and colours each verdict of dispensing.check_code.

A pharmacist acts on the colour before reading: green means hand over, amber means something
can be done here (wait, confirm the clock, check the date), red means do not hand over.
"""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from edge_node.services.dispensing import VERDICTS, Verdict

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


def describe(verdict: Verdict) -> dict:
    tone, headline, explanation = WORDS[verdict.code]
    instant = verdict.params.get(WHEN.get(verdict.code, ""))
    text = str(explanation)  # translated now, in the reader's language
    if "%(when)s" in text:
        text = text % {"when": fmt_datetime(instant) if instant else "—"}
    return {"code": verdict.code, "tone": tone, "headline": str(headline), "text": text,
            "may_dispense": verdict.may_dispense}
