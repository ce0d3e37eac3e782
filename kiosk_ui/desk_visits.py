"""A booked visit at the registry desk: cancel it (after confirming, with the reason), move
it to another free time of the same doctor, and print its booking slip."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext

from edge_node.errors import NotFound, ValidationFailed
from edge_node.services import appointments, facilities, patients
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError

from .auth import safe_next, signed_in, to_sign_in
from .common import remember_language, ui_now
from .errors import register_html_errors
from .security import protect
from .slots import chosen_day, free_days
from .workstation import render

log = logging.getLogger(__name__)

bp = Blueprint("desk_visits", __name__, url_prefix="/ui/desk")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

MAX_REASON = 400  # what AppointmentCancelled keeps of a reason


def _(message: str) -> str:
    """Marks an error's English msgid for extraction; error_text() translates it when shown."""
    return message


def _visit(appointment_id: str) -> tuple[dict, dict]:
    """The visit (with its doctor's name) and its patient's demographics."""
    g.actor.require("view_schedule")
    row = appointments.get_appointment(store(), appointment_id)
    patient = patients.get_summary(store(), row["patient_id"])
    for visit in appointments.list_appointments(store(), g.actor,
                                                patient_id=row["patient_id"]):
        if visit["appointment_id"] == appointment_id:
            return visit, patient
    raise NotFound("Appointment %(id)s is not known on this node", field="appointment_id",
                   id=appointment_id)


@bp.route("/appointments/<appointment_id>/cancel", methods=["GET", "POST"])
@signed_in
def cancel(appointment_id: str):
    """One click never cancels: the registrar confirms, saying why."""
    g.actor.require("book")
    visit, patient = _visit(appointment_id)
    back = safe_next(request.values.get("next"),
                     url_for("desk.patient", patient_id=patient["patient_id"]))
    reason = " ".join(request.form.get("reason", "").split())[:MAX_REASON]
    if request.method == "POST":
        try:
            if not reason:
                raise ValidationFailed(_("Say why the visit is cancelled"), field="reason")
            appointments.cancel(store(), g.actor, appointment_id, reason)
        except ProtocolError as e:
            return render("desk/cancel_visit.html", e, visit=visit, patient=patient,
                          reason=reason, next=back, max_reason=MAX_REASON)
        flash(gettext("The visit is cancelled."), "ok")
        return redirect(back)
    return render("desk/cancel_visit.html", visit=visit, patient=patient, reason=reason,
                  next=back, max_reason=MAX_REASON)


@bp.route("/appointments/<appointment_id>/move", methods=["GET", "POST"])
@signed_in
def move(appointment_id: str):
    g.actor.require("book")
    visit, patient = _visit(appointment_id)
    doctor = facilities.get_practitioner(store(), visit["practitioner_id"])
    error = None
    if request.method == "POST":
        try:
            appointments.reschedule(store(), g.actor, appointment_id,
                                    starts_at=request.form.get("starts_at", ""), now=ui_now())
        except ProtocolError as e:
            error = e
        else:
            flash(gettext("The visit is moved."), "ok")
            return redirect(url_for("desk.patient", patient_id=patient["patient_id"]))
    days = free_days(doctor["practitioner_id"], ui_now())
    day = chosen_day(days, request.values.get("day"))
    return render("desk/move_visit.html", error, visit=visit, patient=patient, doctor=doctor,
                  days=days, day=day, slots=days.get(day, []) if day else [])


@bp.get("/appointments/<appointment_id>/slip")
@signed_in
def slip(appointment_id: str):
    visit, patient = _visit(appointment_id)
    facility = facilities.get_facility(store(), visit["facility_id"])
    return render("desk/slip.html", visit=visit, patient=patient, facility=facility,
                  printed_at=ui_now())
