"""Words a patient understands: what the kiosk says in place of the services' messages,
which are written for staff and engineers ("PINFL digits 2-7 are not a valid birth date").

A patient cannot act on which part of the number is wrong, only on what to do next: count
the digits, compare with the document, ask at the desk.
"""

from __future__ import annotations

import logging

from flask_babel import gettext

from sync_protocol.errors import InvalidPinfl

log = logging.getLogger(__name__)


def pinfl_advice(error: InvalidPinfl) -> str:
    """What to do about a PINFL the kiosk refused, in the screen's language."""
    if error.part == "length":
        return gettext("A PINFL has 14 digits and %(count)s were entered. Type the whole"
                       " number as printed on your passport or ID card.",
                       count=error.params.get("count", 0))
    # Any other part (century, birth date, district, serial, check digit): one digit is wrong.
    return gettext("This is not a valid PINFL: a digit may be mistyped. Compare it with the"
                   " 14-digit number on your passport or ID card and type it again. If it"
                   " still fails, ask at the registry desk.")
