"""What the workstation's screens share (registry desk, doctor, prescribing, paper, counter,
conflicts, call-centre requests): a page rendered with the signed-in person and an error's
words, and the patient a page is about."""

from __future__ import annotations

import logging
from typing import Any

from flask import g, render_template

from edge_node.services import patients
from edge_node.services.records import PatientSummary
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError

from .common import error_text

log = logging.getLogger(__name__)


def render(template: str, error: ProtocolError | None = None,
           **context: Any) -> tuple[str, int]:
    """The page and its status: 200, or the error's own status (422 for a form's mistake)."""
    status = getattr(error, "http_status", 422) if error else 200
    return render_template(template, error=error_text(error) if error else None,
                           error_field=error.field if error else None, area="desk",
                           actor=g.get("actor"), **context), status


def patient_summary(patient_id: str) -> PatientSummary:
    """The demographics of the patient a page is about, for staff who may see patients."""
    g.actor.require("view_patient")
    return patients.get_summary(store(), patient_id)


def with_patient_names(rows: list[dict]) -> list[dict]:
    """Rows (visits, requests) each with its patient's demographics under "patient"."""
    return [{**row, "patient": patients.get_summary(store(), row["patient_id"])}
            for row in rows]
