"""API: appointments, visits, orders, laboratory results, ICD-10 search."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..services import appointments, clinical
from .api_people import parse_day
from .endpoint import DAY_QUERY, ID, STR, endpoint, obj, store

bp = Blueprint("care", __name__, url_prefix="/api/v1")
TEXT = {"type": "string", "maxLength": 4000}


@endpoint(bp, "GET", "/appointments", summary="Appointments by patient, doctor or day",
          query={"patient_id": "ULID", "practitioner_id": "ULID",
                 "day": ("YYYY-MM-DD", DAY_QUERY)})
def list_appointments():
    day = request.args.get("day")
    return jsonify({"appointments": appointments.list_appointments(
        store(), g.actor, patient_id=request.args.get("patient_id"),
        practitioner_id=request.args.get("practitioner_id"),
        day=parse_day(day, "day") if day else None)})


@endpoint(bp, "POST", "/appointments", status=201, summary="Book a free slot",
          body=obj({"patient_id": ID, "practitioner_id": ID, "starts_at": STR},
                   {"channel": {"enum": list(appointments.CHANNELS)}}))
def book(data):
    data.setdefault("channel", "registry")
    return jsonify({"appointment_id": appointments.book(store(), g.actor, **data)}), 201


@endpoint(bp, "POST", "/appointments/<appointment_id>/cancel", summary="Cancel a booking",
          body=obj({}, {"reason": STR}))
def cancel(appointment_id, data):
    appointments.cancel(store(), g.actor, appointment_id, data.get("reason", ""))
    return jsonify({"status": "cancelled"})


@endpoint(bp, "POST", "/appointments/<appointment_id>/reschedule",
          summary="Move a booking to another free slot",
          body=obj({"starts_at": STR}, {"practitioner_id": ID}))
def reschedule(appointment_id, data):
    appointments.reschedule(store(), g.actor, appointment_id, **data)
    return jsonify({"status": "booked", "starts_at": data["starts_at"]})


@endpoint(bp, "POST", "/appointments/<appointment_id>/check-in",
          summary="Check in for today's visit; returns the queue number")
def check_in(appointment_id):
    return jsonify({"queue_number": appointments.check_in(store(), g.actor, appointment_id)})


@endpoint(bp, "POST", "/appointments/<appointment_id>/complete", summary="Mark as completed")
def complete(appointment_id):
    appointments.complete(store(), g.actor, appointment_id)
    return jsonify({"status": "completed"})


@endpoint(bp, "POST", "/appointments/<appointment_id>/no-show", summary="Mark as no-show")
def no_show(appointment_id):
    appointments.mark_no_show(store(), g.actor, appointment_id)
    return jsonify({"status": "no_show"})


DIAGNOSIS = obj({"code": STR}, {"primary": {"type": "boolean"}})


@endpoint(bp, "POST", "/visits", status=201,
          summary="Record a visit with ICD-10 diagnoses (doctor)",
          body=obj({"patient_id": ID, "diagnoses": {"type": "array", "items": DIAGNOSIS}},
                   {"appointment_id": ID, "complaints": TEXT, "notes": TEXT}))
def record_visit(data):
    return jsonify({"visit_id": clinical.record_visit(store(), g.actor, **data)}), 201


@endpoint(bp, "POST", "/visits/<visit_id>/orders", status=201,
          summary="Add a doctor's order to a visit",
          body=obj({"kind": {"enum": list(clinical.ORDER_KINDS)}, "text": TEXT}))
def record_order(visit_id, data):
    order_id = clinical.record_order(store(), g.actor, visit_id=visit_id, **data)
    return jsonify({"order_id": order_id}), 201


@endpoint(bp, "POST", "/lab-results", status=201, summary="Record a laboratory result (doctor)",
          body=obj({"patient_id": ID, "test": STR, "value": STR},
                   {"unit": STR, "reference_range": STR,
                    "flag": {"enum": list(clinical.LAB_FLAGS)}, "order_id": ID}))
def record_lab_result(data):
    return jsonify({"result_id": clinical.record_lab_result(store(), g.actor, **data)}), 201


@endpoint(bp, "GET", "/icd10", summary="Search ICD-10 by code or words",
          query={"q": "code or words"})
def search_icd10():
    return jsonify({"results": clinical.search_icd10(request.args.get("q", ""))})
