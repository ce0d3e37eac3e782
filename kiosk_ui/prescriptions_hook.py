"""HOOK: prescriptions on the kiosk and the doctor's card, and the prescription-writing link.

Prescribing (``edge_node.services.prescribing``) is built separately. These functions show its
data when that module is installed and answer ``None`` (the section is hidden) when it is not;
nothing here invents data. Contract used: ``patient_prescriptions(store, actor, patient_id)``
returning dicts with number, issued_at, expires_at, status, qr and items (inn, strength, form,
quantity, dosage); the writing screen registers the endpoint PRESCRIBE_ENDPOINT.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from flask import current_app, url_for
from markupsafe import Markup

from edge_node.services.access import Actor
from edge_node.web.context import store

log = logging.getLogger(__name__)

PRESCRIBING_MODULE = "edge_node.services.prescribing"
PRESCRIBE_ENDPOINT = "prescribe.new"  # the writing screen's endpoint, taking patient_id
QR_SCALE = 4  # pixels per module: a phone camera or a USB scanner reads it off the screen


def available() -> bool:
    return importlib.util.find_spec(PRESCRIBING_MODULE) is not None


def patient_prescriptions(actor: Actor, patient_id: str) -> dict | None:
    """{"items": [...], "failed": bool}, or None when prescribing is not installed."""
    if not available():
        return None
    module = importlib.import_module(PRESCRIBING_MODULE)
    read = getattr(module, "patient_prescriptions", None)
    if read is None:
        return None
    try:
        return {"items": read(store(), actor, patient_id), "failed": False}
    except Exception:  # the rest of the screen must still work
        log.exception("prescriptions could not be read")
        return {"items": [], "failed": True}


def qr_svg(text: str | None) -> Markup | None:
    if not text:
        return None
    from sync_protocol.qr import render_svg

    # segno writes the SVG itself (no user text inside), so it is safe to inline.
    return Markup(render_svg(text, scale=QR_SCALE))  # noqa: S704


def prescribe_url(patient_id: str) -> str | None:
    if PRESCRIBE_ENDPOINT not in current_app.view_functions:
        return None
    return url_for(PRESCRIBE_ENDPOINT, patient_id=patient_id)
