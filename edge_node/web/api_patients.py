"""API: patients, phone confirmation, the medical card and its audit trail."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..services import card, patients
from .endpoint import (
    DOCUMENT_QUERY,
    ID,
    IDENTITY_REFUSED,
    PINFL_QUERY,
    STR,
    endpoint,
    obj,
    store,
)

bp = Blueprint("patients", __name__, url_prefix="/api/v1")


@endpoint(bp, "POST", "/patients", status=201,
          summary="Register a patient (creates the MED-ID card)",
          body=obj({"full_name": STR, "facility_id": ID},
                   {"phone": STR, "pinfl": STR, "document": STR, "birth_date": STR, "sex": STR,
                    "family_doctor_id": ID}))
def register(data):
    return jsonify(patients.register_patient(store(), g.actor, **data)), 201


@endpoint(bp, "GET", "/patients", summary="Find a patient by PINFL or identity document",
          query={"pinfl": ("14 digits", PINFL_QUERY),
                 "document": ("e.g. AA1234567", DOCUMENT_QUERY)},
          refuses=IDENTITY_REFUSED)
def find():
    return jsonify(patients.find_patient(store(), g.actor, pinfl=request.args.get("pinfl"),
                                         document=request.args.get("document")))


@endpoint(bp, "PATCH", "/patients/<patient_id>",
          summary="Change demographic fields, one event per field",
          body={"type": "object", "minProperties": 1, "additionalProperties": False,
                "properties": {f: {"type": ["string", "null"], "maxLength": 200}
                               for f in patients.EDITABLE_FIELDS}})
def change(patient_id, data):
    for field, value in data.items():
        patients.change_patient_field(store(), g.actor, patient_id, field, value)
    row = patients.get_patient(store(), patient_id)
    return jsonify(patients.patient_summary(row))


@endpoint(bp, "POST", "/patients/<patient_id>/phone/confirm",
          summary="Confirm the phone with the SMS code", body=obj({"code": STR}))
def confirm_phone(patient_id, data):
    patients.confirm_phone(store(), patient_id, data["code"])
    return jsonify({"phone_confirmed": True})


@endpoint(bp, "POST", "/patients/<patient_id>/phone/resend", status=202,
          summary="Send a new SMS code")
def resend_code(patient_id):
    patients.resend_code(store(), g.actor, patient_id)
    return jsonify({"queued": True}), 202


@endpoint(bp, "GET", "/patients/<patient_id>/card",
          summary="The whole medical card; every read is audited",
          query={"reason": ("why the card is opened (audited)",
                            {"enum": list(card.READ_REASONS)}, True)})
def read_card(patient_id):
    return jsonify(card.read_card(store(), g.actor, patient_id, request.args.get("reason", "")))


@endpoint(bp, "GET", "/patients/<patient_id>/card-reads",
          summary="Who opened this card, when and why (admin)")
def card_reads(patient_id):
    return jsonify({"reads": card.card_reads(store(), g.actor, patient_id)})
