"""Conflict kinds and review states: the words the hub raises conflicts in and nodes show.

The hub detects a conflict (DESIGN 5) and emits ConflictRaised with one of KINDS; staff at the
hub review it (ConflictStateChanged to ACKNOWLEDGED or RESOLVED, following ALLOWED_FROM); the
node projects both and shows them by role. All three read these names from here.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Dispensing: a drug was handed over against the prescription's rules (DESIGN 4.4: kept, shown).
OVER_DISPENSING = "over_dispensing"
DISPENSE_AFTER_CANCELLATION = "dispense_after_cancellation"
DISPENSE_AFTER_EXPIRY = "dispense_after_expiry"
DISPENSE_AFTER_REVOCATION = "dispense_after_revocation"
# Paper reconciliation: paper records that do not match the e-records (or each other).
PAPER_MISMATCH = "paper_mismatch"
# The registry: a slot booked twice, a patient's field edited at two places, and two
# records or nodes presenting one identity (lesson 10).
DOUBLE_BOOKING = "double_booking"
PATIENT_FIELD = "patient_field"
IDENTITY_CLASH = "identity_clash"

KINDS: tuple[str, ...] = (OVER_DISPENSING, DISPENSE_AFTER_CANCELLATION, DISPENSE_AFTER_EXPIRY,
                          DISPENSE_AFTER_REVOCATION, DOUBLE_BOOKING, PATIENT_FIELD,
                          PAPER_MISMATCH, IDENTITY_CLASH)
# A dispense against an e-prescription: the conflict names the prescription and its dispenses.
DISPENSE_KINDS: tuple[str, ...] = (OVER_DISPENSING, DISPENSE_AFTER_CANCELLATION,
                                   DISPENSE_AFTER_EXPIRY, DISPENSE_AFTER_REVOCATION)
# What a pharmacist deals with (paper too) and what a registrar deals with.
DISPENSING_KINDS: tuple[str, ...] = (*DISPENSE_KINDS, PAPER_MISMATCH)
REGISTRY_KINDS: tuple[str, ...] = (DOUBLE_BOOKING, PATIENT_FIELD, IDENTITY_CLASH)

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATES: tuple[str, ...] = (OPEN, ACKNOWLEDGED, RESOLVED)
# A raised conflict is open; a review moves it on, from these states only. Resolved is final.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {ACKNOWLEDGED: (OPEN,),
                                            RESOLVED: (OPEN, ACKNOWLEDGED)}
REVIEW_STATES: tuple[str, ...] = tuple(ALLOWED_FROM)


def may_change(current: str, new: str) -> bool:
    """Whether a review may move a conflict from `current` to `new`."""
    return current in ALLOWED_FROM.get(new, ())
