"""Prescriptions as the screens show them: a patient's list (kiosk home, the doctor's card)
and a prescription's QR code drawn inline."""

from __future__ import annotations

import logging

from flask import url_for
from markupsafe import Markup

from edge_node.services import prescribing
from edge_node.services.access import Actor
from edge_node.web.context import store
from sync_protocol.qr import render_svg

log = logging.getLogger(__name__)

QR_SCALE = 4  # pixels per module: a phone camera or a USB scanner reads it off the screen


def patient_prescriptions(actor: Actor, patient_id: str) -> dict:
    """{"items": [...], "failed": bool}: a list that cannot be read leaves a message on the
    page, never an error page (the rest of the kiosk or card must still work)."""
    try:
        return {"items": prescribing.patient_prescriptions(store(), actor, patient_id),
                "failed": False}
    except Exception:
        log.exception("prescriptions could not be read")
        return {"items": [], "failed": True}


def qr_svg(text: str | None) -> Markup | None:
    if not text:
        return None
    # segno writes the SVG itself (no user text inside), so it is safe to inline.
    return Markup(render_svg(text, scale=QR_SCALE))  # noqa: S704


def prescribe_url(patient_id: str) -> str:
    """The prescription-writing screen for this patient (kiosk_ui.prescribe)."""
    return url_for("prescribe.new", patient_id=patient_id)
