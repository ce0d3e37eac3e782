"""API: paper pads, and paper prescriptions and dispenses entered after an outage."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from ..services import paper
from .api_rx import ITEM
from .endpoint import ID, STR, endpoint, obj, store

bp = Blueprint("paper", __name__, url_prefix="/api/v1/paper")
REASON = {"enum": list(paper.PAPER_REASONS)}
DISPENSED = obj({"inn": STR, "form": STR, "strength": STR, "quantity": {"type": "integer"},
                 "product": STR, "batch": STR, "expiry": STR})


@endpoint(bp, "GET", "/pads", summary="Paper prescription pads held by this facility")
def pads():
    if not (g.actor.can("prescribe") or g.actor.can("register_patient")):
        g.actor.require("prescribe")
    return jsonify({"pads": paper.pads(store(), store().facility_id)})


@endpoint(bp, "POST", "/prescriptions", status=201, summary="Enter a prescription written on paper",
          body=obj({"paper_serial": STR, "patient_id": ID, "practitioner_id": ID,
                    "items": {"type": "array", "items": ITEM}, "paper_reason": REASON,
                    "issued_at": STR}))
def enter_prescription(data):
    result = paper.enter_paper_prescription(store(), g.actor,
                                            facility_id=store().facility_id, **data)
    return jsonify(result), 201


@endpoint(bp, "POST", "/dispenses", status=201, summary="Enter a line of the paper dispense log",
          body=obj({"items": {"type": "array", "items": DISPENSED}, "paper_reason": REASON,
                    "dispensed_at": STR},
                   {"paper_serial": STR, "prescription_number": STR,
                    "patient_document": STR, "pinfl": STR}))
def enter_dispense(data):
    return jsonify(paper.enter_paper_dispense(store(), g.actor, facility_id=store().facility_id,
                                              **data)), 201
