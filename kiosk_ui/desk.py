"""The registry side of the workstation: sign-in, finding and registering patients, booking
for them, and today's queue per doctor. Doctors use these screens too (their role allows it).
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext

from edge_node.errors import FieldErrors, NotFound
from edge_node.services import (
    appointments,
    facilities,
    patient_search,
    patients,
    sign_in_guard,
    staff,
)
from edge_node.services.access import Actor
from edge_node.web import device_cookies
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError
from sync_protocol.mrz import parse_mrz
from sync_protocol.timeutil import from_instant, local_date

from .auth import TOKEN_KEY, safe_next, signed_in, to_sign_in
from .common import error_text, remember_language, today, ui_now
from .errors import register_html_errors
from .security import protect
from .slots import chosen_day, free_days
from .workstation import patient_summary, render, with_patient_names

log = logging.getLogger(__name__)

bp = Blueprint("desk", __name__, url_prefix="/ui/desk")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

REGISTER_FIELDS = ("full_name", "pinfl", "document", "phone", "birth_date", "sex",
                   "family_doctor_id", "facility_id", "mrz")


def node_facility_id() -> str | None:
    return store().state("facility_id")


# -- signing in and out ---------------------------------------------------------------------

@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    nxt = safe_next(request.values.get("next"), url_for(".home"))
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        try:
            result = staff.sign_in(store(), username, request.form.get("pin", ""),
                                   device_cookie=device_cookies.presented(username),
                                   secret=device_cookies.secret(),
                                   client=device_cookies.client())
        except ProtocolError as e:
            return render("desk/sign_in.html", e, username=username, next=nxt)
        session.clear()  # nothing of a previous person's session survives a sign-in
        session[TOKEN_KEY] = result["token"]
        return device_cookies.remember(redirect(nxt), username.lower(),
                                       result.get("device_cookie"))
    return render("desk/sign_in.html", username=username, next=nxt,
                  signed_out=request.args.get("signed_out") == "1")


@bp.post("/sign-out")
def sign_out():
    token = session.get(TOKEN_KEY)
    if token:
        staff.sign_out(store(), token)
    session.clear()
    return redirect(url_for(".sign_in", signed_out=1))


@bp.get("/")
@signed_in
def home():
    actor: Actor = g.actor
    if actor.role == "doctor" and actor.practitioner_id:
        return redirect(url_for("doctor.today"))
    if actor.role == "pharmacist":
        return redirect(url_for("counter.home"))
    return render("desk/home.html")


@bp.get("/sign-ins")
@signed_in
def failed_sign_ins():
    """The admin's list of failed and locked sign-ins (a guesser on the LAN shows up here)."""
    return render("desk/sign_ins.html", rows=sign_in_guard.failed_sign_ins(store(), g.actor))


# -- patients ------------------------------------------------------------------------------

@bp.get("/patients")
@signed_in
def find():
    g.actor.require("view_patient")
    query = request.args.get("q", "").strip()
    if not query:
        return render("desk/find.html", query=query, max_query=patient_search.MAX_QUERY)
    try:
        found = patient_search.search_patients(store(), g.actor, query)
    except ProtocolError as e:
        return render("desk/find.html", e, query=query, max_query=patient_search.MAX_QUERY)
    if len(found) == 1 and patient_search.identifier_of(query):
        return redirect(url_for(".patient", patient_id=found[0]["patient_id"]))
    return render("desk/find.html", query=query, results=found,
                  max_query=patient_search.MAX_QUERY,
                  more=len(found) >= patient_search.MAX_RESULTS)


def _register_choices() -> dict:
    doctors = facilities.list_practitioners(store())
    clinics = [f for f in facilities.list_facilities(store()) if f["kind"] == "clinic"]
    return {"family_doctors": [d for d in doctors if d["is_family_doctor"]],
            "clinics": clinics}


@bp.route("/patients/new", methods=["GET", "POST"])
@signed_in
def register():
    g.actor.require("register_patient")
    form = {name: request.form.get(name, "").strip() for name in REGISTER_FIELDS}
    form["facility_id"] = form["facility_id"] or node_facility_id() or ""
    if request.method == "POST" and request.form.get("action") == "mrz":
        return _register_form(form, _fill_from_mrz(form))
    if request.method == "POST":
        data = {k: v or None for k, v in form.items() if k != "mrz"}
        try:
            created = patients.register_patient(
                store(), g.actor, full_name=data["full_name"] or "", phone=data["phone"] or "",
                facility_id=data["facility_id"] or "", pinfl=data["pinfl"],
                document=data["document"], birth_date=data["birth_date"], sex=data["sex"],
                family_doctor_id=data["family_doctor_id"])
        except ProtocolError as e:
            return _register_form(form, e)
        if data["phone"]:
            flash(gettext("Registered. MED-ID: %(med_id)s. An SMS code was sent to confirm the"
                          " phone.", med_id=created["med_id"]), "ok")
        else:
            flash(gettext("Registered. MED-ID: %(med_id)s.", med_id=created["med_id"]), "ok")
        return redirect(url_for(".patient", patient_id=created["patient_id"]))
    return _register_form(form)


def _register_form(form: dict, error: ProtocolError | None = None):
    """The form with every wrong field marked beside it, and a link to a patient already
    registered with the same PINFL or document."""
    errors = error.errors if isinstance(error, FieldErrors) else [error] if error else []
    field_errors = {e.field: error_text(e) for e in errors if e.field in REGISTER_FIELDS}
    existing = error.params.get("existing_patient_id") if error else None
    limits = {"name": patients.NAME_LENGTH[1], "phone": patients.PHONE_MAX_TYPED,
              "pinfl": patients.PINFL_MAX_TYPED, "document": patients.DOCUMENT_MAX_TYPED,
              "mrz": patient_search.MAX_QUERY}
    shown = error if error and not field_errors else None  # errors with no field go on top
    page, _ = render("desk/register.html", shown, form=form, field_errors=field_errors,
                     existing_patient_id=existing, limits=limits, **_register_choices())
    return page, getattr(error, "http_status", 422) if error else 200


def _fill_from_mrz(form: dict) -> ProtocolError | None:
    """The MRZ read from the card fills the PINFL, the document and an empty name."""
    try:
        data = parse_mrz(form["mrz"])
    except ProtocolError as e:
        return e
    form.update(pinfl=data.pinfl or form["pinfl"], document=data.document, mrz="")
    if not form["full_name"]:
        form["full_name"] = f"{data.surname} {data.given_names}".strip().title()
    if not data.pinfl and data.birth_date:
        form.update(birth_date=data.birth_date.isoformat(), sex=data.sex or form["sex"])
    return None


@bp.get("/patients/<patient_id>")
@signed_in
def patient(patient_id: str):
    summary = patient_summary(patient_id)
    rows = appointments.list_appointments(store(), g.actor, patient_id=patient_id)
    upcoming = [r for r in rows if r["status"] in ("booked", "checked_in")
                and local_date(from_instant(r["starts_at"])) >= today()]
    try:
        doctor = (facilities.get_practitioner(store(), summary["family_doctor_id"])
                  if summary["family_doctor_id"] else None)
    except NotFound:  # attached to a doctor of another facility, not known on this node
        doctor = None
    return render("desk/patient.html", patient=summary, upcoming=upcoming, today=today(),
                  family_doctor=doctor)


@bp.post("/patients/<patient_id>/phone")
@signed_in
def confirm_phone(patient_id: str):
    g.actor.require("edit_patient")
    try:
        if request.form.get("action") == "resend":
            patients.resend_code(store(), g.actor, patient_id)
            flash(gettext("A new SMS code was sent."), "ok")
        else:
            patients.confirm_phone(store(), patient_id, request.form.get("code", ""))
            flash(gettext("The phone number is confirmed."), "ok")
    except ProtocolError as e:
        flash(error_text(e), "error")
    return redirect(url_for(".patient", patient_id=patient_id))


@bp.route("/patients/<patient_id>/book", methods=["GET", "POST"])
@signed_in
def book(patient_id: str):
    g.actor.require("book")
    summary = patient_summary(patient_id)
    doctor_id = request.values.get("practitioner_id")
    if not doctor_id:
        doctors = facilities.list_practitioners(store(), facility_id=summary["facility_id"])
        doctors.sort(key=lambda d: (d["practitioner_id"] != summary["family_doctor_id"],
                                    not d["is_family_doctor"], d["full_name"]))
        return render("desk/book_doctor.html", patient=summary, doctors=doctors)
    doctor = facilities.get_practitioner(store(), doctor_id)
    error = None
    if request.method == "POST":
        try:
            appointments.book(store(), g.actor, patient_id=patient_id,
                              practitioner_id=doctor_id, starts_at=request.form.get(
                                  "starts_at", ""), channel="registry", now=ui_now())
        except ProtocolError as e:
            error = e
        else:
            flash(gettext("The visit is booked."), "ok")
            return redirect(url_for(".patient", patient_id=patient_id))
    days = free_days(doctor_id, ui_now())
    day = chosen_day(days, request.values.get("day"))
    return render("desk/book_slot.html", error, patient=summary, doctor=doctor, days=days,
                  day=day, slots=days.get(day, []) if day else [])


# -- today's queue --------------------------------------------------------------------------

@bp.get("/queue")
@signed_in
def queue():
    g.actor.require("view_schedule")
    doctors = facilities.list_practitioners(store(), facility_id=node_facility_id())
    chosen = request.args.get("practitioner_id")
    shown = [d for d in doctors if d["practitioner_id"] == chosen] or doctors
    lists = []
    for doctor in shown:
        rows = appointments.list_appointments(store(), g.actor,
                                              practitioner_id=doctor["practitioner_id"],
                                              day=today())
        lists.append({"doctor": doctor, "rows": with_patient_names(
            [r for r in rows if r["status"] != "cancelled"])})
    return render("desk/queue.html", doctors=doctors, lists=lists, chosen=chosen,
                  today=today())


@bp.post("/appointments/<appointment_id>/<action>")
@signed_in
def appointment_action(appointment_id: str, action: str):
    if action != "check-in":  # cancel: desk_visits.cancel, after confirming with a reason
        abort(404)
    g.actor.require("check_in")
    back = safe_next(request.form.get("next"), url_for(".queue"))
    try:
        number = appointments.check_in(store(), g.actor, appointment_id, now=ui_now())
        flash(gettext("Checked in. Queue number %(number)s.", number=number), "ok")
    except ProtocolError as e:
        flash(error_text(e), "error")
    return redirect(back)
