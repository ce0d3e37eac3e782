"""The reception kiosk: language, identification, visits, booking, check-in, slips.

Every view acts as the identified patient (role "patient"), so the services decide what the
patient may see and change; the kiosk never asks for more than its own patient's data.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from edge_node.errors import Forbidden, NotFound, ValidationFailed
from edge_node.services import appointments, facilities, kiosk_identity, prescribing
from edge_node.services.patients import get_patient
from edge_node.web.context import store
from sync_protocol.errors import InvalidPinfl, ProtocolError
from sync_protocol.identifiers import PINFL_LENGTH, parse_pinfl
from sync_protocol.mrz import MAX_MRZ_TEXT, parse_mrz
from sync_protocol.timeutil import from_instant, local_date

from . import kiosk_session as ks
from . import prescription_parts
from .common import error_text, remember_language, today, ui_now
from .errors import register_html_errors
from .patient_words import pinfl_advice
from .security import protect
from .slots import chosen_day, free_days

log = logging.getLogger(__name__)

bp = Blueprint("kiosk", __name__, url_prefix="/ui/kiosk")
protect(bp)
bp.before_request(ks.enforce_idle_limit)
bp.after_request(remember_language)
register_html_errors(bp, "kiosk", ks.to_start)

OPEN = ("booked", "checked_in")


def _(message: str) -> str:
    """Marks an error's English msgid for extraction; error_text() translates it when shown."""
    return message


def keypad_value(field: str, length: int) -> str:
    """The digits in a keypad form after the key pressed (each key is a submit button, so the
    keypad works without JavaScript; with it, keys edit the field in the page)."""
    value = "".join(c for c in request.form.get(field, "") if c.isascii() and c.isdigit())
    key = request.form.get("key", "")
    if key == "back":
        value = value[:-1]
    elif key == "clear":
        value = ""
    elif len(key) == 1 and key.isdigit():
        value += key
    return value[:length]


def _form(template: str, error: ProtocolError | None, *, words: str | None = None,
          **context):
    """The form again with its error; ``words`` replaces the service's message with one
    written for patients (patient_words)."""
    status = getattr(error, "http_status", 422) if error else 200
    shown = words or (error_text(error) if error else None)
    return render_template(template, error=shown, area="kiosk", **context), status


# -- language and identification ------------------------------------------------------------

@bp.get("/")
def start():
    if session.get(ks.PATIENT):
        return redirect(url_for(".home"))
    # A pharmacy holds no patients to sign in: say so rather than fail at the first step.
    return render_template("kiosk/start.html", area="kiosk",
                           ended=request.args.get("ended") == "1",
                           pharmacy=facilities.node_kind(store()) == "pharmacy")


@bp.route("/identify", methods=["GET", "POST"])
def identify():
    if ks.SEEN not in session:
        ks.touch()  # the idle clock starts with the first step
    value = keypad_value("pinfl", PINFL_LENGTH)
    mrz = request.form.get("mrz", "")[:MAX_MRZ_TEXT]
    if request.method == "POST" and not request.form.get("key"):
        try:
            # The ID card in the reader: its MRZ carries the PINFL (check digits verified).
            digits = _mrz_pinfl(mrz) if mrz.strip() else parse_pinfl(value).digits
            kiosk_identity.check_allowed(store(), ks.kiosk_id(), digits)
        except InvalidPinfl as e:
            return _form("kiosk/identify.html", e, value=value, words=pinfl_advice(e))
        except ProtocolError as e:
            return _form("kiosk/identify.html", e, value=value)
        session[ks.PINFL] = digits
        return redirect(url_for(".verify"))
    return _form("kiosk/identify.html", None, value=value)


def _mrz_pinfl(text: str) -> str:
    pinfl = parse_mrz(text).pinfl
    if pinfl is None:
        raise ValidationFailed(_("This document carries no PINFL: type your PINFL"),
                               field="pinfl")
    return pinfl


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    pinfl = session.get(ks.PINFL)
    if not pinfl:
        return redirect(url_for(".identify"))
    value = keypad_value("document_digits", kiosk_identity.DOCUMENT_DIGITS)
    sms = kiosk_identity.sms_reachable(store())
    if request.method == "POST" and not request.form.get("key"):
        try:
            actor = kiosk_identity.identify(store(), kiosk_id=ks.kiosk_id(), pinfl=pinfl,
                                            document_digits=value)
        except ProtocolError as e:
            return _form("kiosk/verify.html", e, value="", sms=sms)
        ks.sign_in(actor)
        return redirect(url_for(".home"))
    return _form("kiosk/verify.html", None, value=value, sms=sms)


@bp.post("/sms/start")
def sms_start():
    pinfl = session.get(ks.PINFL)
    if not pinfl:
        return redirect(url_for(".identify"))
    try:
        session[ks.SMS] = kiosk_identity.start_sms(
            store(), kiosk_id=ks.kiosk_id(), pinfl=pinfl, secret=_secret())
    except ProtocolError as e:
        return _form("kiosk/verify.html", e, value="", sms=False)
    return redirect(url_for(".sms_code"))


@bp.route("/sms", methods=["GET", "POST"])
def sms_code():
    challenge = session.get(ks.SMS)
    if not challenge:
        return redirect(url_for(".identify"))
    value = keypad_value("sms_code", kiosk_identity.SMS_CODE_DIGITS)
    if request.method == "POST" and not request.form.get("key"):
        try:
            actor = kiosk_identity.verify_sms(store(), kiosk_id=ks.kiosk_id(), challenge=challenge,
                                              code=value, secret=_secret())
        except ProtocolError as e:
            return _form("kiosk/sms.html", e, value="")
        ks.sign_in(actor)
        return redirect(url_for(".home"))
    return _form("kiosk/sms.html", None, value=value)


def _secret() -> bytes:
    return str(current_app.config["SECRET_KEY"]).encode()


@bp.post("/end")
def end():
    ks.end()
    idle = request.form.get("idle") == "1"  # sent by the page's idle timer
    response = redirect(url_for(".start", ended=1 if idle else None))
    response.delete_cookie("lang")  # the next person starts in the default language
    return response


@bp.get("/alive")
def alive():
    """The page's idle timer reports touches here, keeping the server's session alive."""
    return "", 204


# -- the identified patient -------------------------------------------------------------------

def _own(actor, appointment_id: str) -> dict:
    for row in appointments.list_appointments(store(), actor, patient_id=actor.patient_id):
        if row["appointment_id"] == appointment_id:
            row["can_check_in"] = (row["status"] == "booked"
                                   and local_date(from_instant(row["starts_at"])) == today())
            return row
    raise NotFound("Appointment %(id)s is not known on this node", field="appointment_id",
                   id=appointment_id)


@bp.get("/home")
def home():
    actor = ks.patient()
    visits = [
        {**row, "can_check_in": row["status"] == "booked" and local_date(
            from_instant(row["starts_at"])) == today()}
        for row in appointments.list_appointments(store(), actor, patient_id=actor.patient_id)
        if row["status"] in OPEN and local_date(from_instant(row["starts_at"])) >= today()]
    done = request.args.get("done")
    return render_template("kiosk/home.html", area="kiosk", actor=actor, visits=visits,
                           done=done, today=today(),
                           prescriptions=prescription_parts.patient_prescriptions(
                               actor, actor.patient_id))


@bp.get("/book")
def choose_doctor():
    actor = ks.patient()
    patient = get_patient(store(), actor.patient_id)
    doctors = facilities.list_practitioners(store(), facility_id=patient["facility_id"])
    family = [d for d in doctors if d["practitioner_id"] == patient["family_doctor_id"]]
    if not family:  # not attached yet: any family doctor of the polyclinic
        family = [d for d in doctors if d["is_family_doctor"]]
    specialists = [d for d in doctors if not d["is_family_doctor"]]
    return render_template("kiosk/doctors.html", area="kiosk", actor=actor, family=family,
                           specialists=specialists,
                           own_doctor=patient["family_doctor_id"] is not None)


def _slot_page(actor, doctor, action: str, error: ProtocolError | None = None, moving=None):
    days = free_days(doctor["practitioner_id"], ui_now())
    day = chosen_day(days, request.values.get("day"))
    return _form("kiosk/slots.html", error, actor=actor, doctor=doctor, days=days, day=day,
                 slots=days.get(day, []) if day else [], action=action, moving=moving)


def _confirm_slot(actor, doctor, action: str, moving=None):
    """A tapped time is booked only once the patient confirms it (a stray touch books
    nothing); the page repeats the doctor, the day and the time."""
    starts_at = request.form.get("starts_at", "")
    try:
        local_date(from_instant(starts_at))
    except ValueError:
        return _slot_page(actor, doctor, action, ValidationFailed(
            _("Choose a time from the list"), field="starts_at"), moving=moving)
    return _form("kiosk/confirm_slot.html", None, actor=actor, doctor=doctor, action=action,
                 starts_at=starts_at, moving=moving, day=request.form.get("day", ""))


@bp.route("/book/<practitioner_id>", methods=["GET", "POST"])
def choose_time(practitioner_id: str):
    actor = ks.patient()
    doctor = facilities.get_practitioner(store(), practitioner_id)
    action = url_for(".choose_time", practitioner_id=practitioner_id)
    if request.method == "POST" and request.form.get("confirm") != "1":
        return _confirm_slot(actor, doctor, action)
    if request.method == "POST":
        try:
            appointment_id = appointments.book(
                store(), actor, patient_id=actor.patient_id, practitioner_id=practitioner_id,
                starts_at=request.form.get("starts_at", ""), channel="kiosk", now=ui_now())
        except ProtocolError as e:
            return _slot_page(actor, doctor, action, e)
        return redirect(url_for(".appointment", appointment_id=appointment_id, done="booked"))
    return _slot_page(actor, doctor, action)


@bp.get("/appointments/<appointment_id>")
def appointment(appointment_id: str):
    actor = ks.patient()
    return render_template("kiosk/appointment.html", area="kiosk", actor=actor,
                           visit=_own(actor, appointment_id), done=request.args.get("done"))


@bp.route("/appointments/<appointment_id>/move", methods=["GET", "POST"])
def move(appointment_id: str):
    actor = ks.patient()
    visit = _own(actor, appointment_id)
    doctor = facilities.get_practitioner(store(), visit["practitioner_id"])
    action = url_for(".move", appointment_id=appointment_id)
    if request.method == "POST" and request.form.get("confirm") != "1":
        return _confirm_slot(actor, doctor, action, moving=visit)
    if request.method == "POST":
        try:
            appointments.reschedule(store(), actor, appointment_id,
                                    starts_at=request.form.get("starts_at", ""), now=ui_now())
        except ProtocolError as e:
            return _slot_page(actor, doctor, action, e, moving=visit)
        return redirect(url_for(".appointment", appointment_id=appointment_id, done="moved"))
    return _slot_page(actor, doctor, action, moving=visit)


@bp.route("/appointments/<appointment_id>/cancel", methods=["GET", "POST"])
def cancel(appointment_id: str):
    actor = ks.patient()
    visit = _own(actor, appointment_id)
    if request.method == "POST":
        try:
            appointments.cancel(store(), actor, appointment_id, "cancelled at the kiosk")
        except ProtocolError as e:
            return _form("kiosk/cancel.html", e, actor=actor, visit=visit)
        return redirect(url_for(".home", done="cancelled"))
    return _form("kiosk/cancel.html", None, actor=actor, visit=visit)


@bp.post("/appointments/<appointment_id>/check-in")
def check_in(appointment_id: str):
    actor = ks.patient()
    try:
        appointments.check_in(store(), actor, appointment_id, now=ui_now())
    except ProtocolError as e:
        return _form("kiosk/appointment.html", e, actor=actor,
                     visit=_own(actor, appointment_id), done=None)
    return redirect(url_for(".appointment", appointment_id=appointment_id, done="checked_in"))


@bp.get("/appointments/<appointment_id>/slip")
def slip(appointment_id: str):
    actor = ks.patient()
    visit = _own(actor, appointment_id)
    facility = facilities.get_facility(store(), visit["facility_id"])
    return render_template("kiosk/slip.html", area="kiosk", actor=actor, visit=visit,
                           facility=facility, printed_at=ui_now())


@bp.get("/prescriptions/<prescription_id>")
def prescription(prescription_id: str):
    actor = ks.patient()
    try:
        rx = prescribing.prescription_with_items(store(), actor, prescription_id)
    except Forbidden:  # another patient's: to a kiosk, as unknown as any other
        raise NotFound("Prescription %(id)s is not known on this node",
                       field="prescription_id", id=prescription_id) from None
    return render_template("kiosk/prescription.html", area="kiosk", actor=actor, rx=rx,
                           qr=prescription_parts.qr_svg(rx.get("qr")),
                           issuer=_issuer_names(rx))


def _issuer_names(rx: dict) -> dict:
    """The clinic's and the doctor's names for a patient's eyes (never their codes); a record
    not held on this node leaves its name out rather than showing a code."""
    names = {"facility": None, "doctor": None}
    try:
        names["facility"] = facilities.get_facility(store(), rx["facility_id"])["name"]
    except (KeyError, NotFound):
        pass
    try:
        names["doctor"] = facilities.get_practitioner(store(), rx["practitioner_id"])["full_name"]
    except (KeyError, NotFound):
        pass
    return names
