"""API: chronic status, prescriptions and their QR codes, the pharmacy counter."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

from sync_protocol import qr

from ..catalogue import LANGUAGES, Catalogue
from ..errors import ValidationFailed
from ..services import clock, dispensing, online_dispense, prescribing
from ..services.patients import get_patient
from .context import credentials, hub_client, store, trust_list
from .endpoint import (
    DOCUMENT_QUERY,
    ID,
    IDENTITY_REFUSED,
    PINFL_QUERY,
    STR,
    endpoint,
    obj,
)
from .errors import translate_text

bp = Blueprint("rx", __name__, url_prefix="/api/v1")
ITEM = obj({"inn": STR, "form": STR, "strength": STR, "quantity": {"type": "integer"},
            "dosage": STR},
           {"repeats": {"type": "integer"}, "min_days_between_fills": {"type": "integer"}})


@endpoint(bp, "GET", "/catalogue", summary="Drugs by INN or name (autocomplete)",
          query={"q": "text", "lang": ("uz | ru | en", {"enum": list(LANGUAGES)})})
def search_catalogue():
    lang = request.args.get("lang") or LANGUAGES[0]
    drugs = Catalogue.load().search(request.args.get("q", ""), lang=lang)
    return jsonify({"drugs": [drug_summary(d, lang) for d in drugs]})


def drug_summary(drug, lang: str = "uz") -> dict:
    return {"inn": drug.inn, "name": drug.name(lang), "atc": drug.atc,
            "forms": [{"form": f.form, "unit": f.unit, "strengths": list(f.strengths)}
                      for f in drug.forms],
            "requires_e_prescription": drug.requires_e_prescription,
            "e_prescribable": drug.e_prescribable, "narcotic": drug.narcotic,
            "chronic_max_days": drug.chronic_max_days,
            "default_validity_days": drug.default_validity_days}


@endpoint(bp, "POST", "/chronic-conditions", summary="Mark a patient chronic for a diagnosis",
          body=obj({"patient_id": ID, "code": STR}, {"active": {"type": "boolean"}}))
def set_chronic(data):
    prescribing.set_chronic_condition(store(), g.actor, data["patient_id"], data["code"],
                                      data.get("active", True))
    return jsonify({"chronic": data.get("active", True)})


@endpoint(bp, "POST", "/prescriptions", status=201,
          summary="Write an e-prescription by INN (doctor)",
          body=obj({"patient_id": ID, "items": {"type": "array", "items": ITEM}},
                   {"validity_days": {"type": "integer"}}))
def issue(data):
    result = prescribing.issue_prescription(store(), g.actor, credentials(), **data)
    return jsonify(result), 201


@endpoint(bp, "GET", "/patients/<patient_id>/prescriptions",
          summary="A patient's prescriptions with their items")
def list_for_patient(patient_id):
    get_patient(store(), patient_id)
    return jsonify({"prescriptions": prescribing.patient_prescriptions(store(), g.actor,
                                                                       patient_id)})


@endpoint(bp, "POST", "/prescriptions/<prescription_id>/cancel",
          summary="Cancel a prescription (its prescriber)", body=obj({"reason": STR}))
def cancel(prescription_id, data):
    prescribing.cancel_prescription(store(), g.actor, prescription_id, data["reason"])
    return jsonify({"status": "cancelled"})


@endpoint(bp, "GET", "/prescriptions/<prescription_id>/qr.<fmt>",
          summary="The prescription's QR code as svg or png")
def qr_image(prescription_id, fmt):
    if not (g.actor.can("prescribe") or g.actor.can("dispense")):
        g.actor.require("prescribe")
    row = prescribing.get_prescription(store(), prescription_id)
    if fmt == "svg":
        return Response(qr.render_svg(row["qr"]), mimetype="image/svg+xml")
    if fmt == "png":
        return Response(qr.render_png(row["qr"], scale=6), mimetype="image/png")
    raise ValidationFailed("Format must be svg or png", field="fmt")


@endpoint(bp, "POST", "/pharmacy/verify",
          summary="Verdict for a scanned code (and the PINFL typed from the ID card)",
          body=obj({"code": {"type": "string", "maxLength": 100_000}}, {"pinfl": STR}))
def verify(data):
    typed = dispensing.parse_typed_pinfl(data.get("pinfl"))
    verdict = dispensing.record_scan(store(), g.actor, trust_list(), data["code"],
                                    typed_pinfl=typed)
    return jsonify(verdict_json(verdict))


def verdict_json(verdict: dispensing.Verdict) -> dict:
    return {"verdict": verdict.code, "may_dispense": verdict.may_dispense,
            "message": translate_text(verdict.message, verdict.params),
            "prescription": verdict.prescription, "items": verdict.items,
            "clock": verdict.clock, "history": verdict.history, "claims": verdict.claims}


@endpoint(bp, "POST", "/pharmacy/dispense", status=201,
          summary="Dispense part or all of an item (online: claimed at the hub first)",
          body=obj({"prescription_id": ID, "item_no": {"type": "integer"},
                    "quantity": {"type": "integer"}, "product": STR, "batch": STR,
                    "expiry": STR},
                   {"code": {"type": "string", "maxLength": 100_000},
                    "offline": {"type": "boolean"}}))
def dispense(data):
    return jsonify(online_dispense.dispense_with_hub(
        store(), g.actor, hub_client(), config=current_app.config, **data)), 201


@endpoint(bp, "GET", "/pharmacy/lookup",
          summary="Active prescriptions of a patient by PINFL or identity document",
          query={"pinfl": ("14 digits", PINFL_QUERY),
                 "document": ("e.g. AA1234567", DOCUMENT_QUERY)},
          refuses=IDENTITY_REFUSED)
def lookup():
    return jsonify(dispensing.find_by_identity(store(), g.actor,
                                               pinfl=request.args.get("pinfl"),
                                               document=request.args.get("document")))


@endpoint(bp, "GET", "/node/clock", summary="Whether this node's clock is confirmed")
def clock_state():
    return jsonify(clock.clock_status(store()))


@endpoint(bp, "POST", "/node/clock/confirm",
          summary="Staff confirm the date and time shown are right")
def confirm_clock():
    if not (g.actor.can("dispense") or g.actor.can("manage_staff")):
        g.actor.require("dispense")
    clock.confirm_clock(store(), f"staff:{g.actor.actor_id}")
    return jsonify(clock.clock_status(store()))
