"""Paper fallback screens: a printable blank prescription with a serial from a held pad,
entering a paper prescription afterwards (registrar or doctor), and the pharmacy's paper
dispense log (pharmacist). What happened on paper is entered with the time written on it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from edge_node.catalogue import Catalogue
from edge_node.errors import ValidationFailed
from edge_node.services import facilities, paper
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError
from sync_protocol.timeutil import TASHKENT, to_instant

from .auth import signed_in, to_sign_in
from .common import remember_language, ui_now
from .errors import register_html_errors
from .prescribe import ITEM_ERROR
from .security import protect
from .workstation import patient_summary, render

log = logging.getLogger(__name__)

bp = Blueprint("paper_ui", __name__, url_prefix="/ui")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

PAPER_ROWS = 5  # a paper prescription, like an e-prescription, holds at most five medicines
RX_ITEM_FIELDS = ("inn", "form", "strength", "quantity", "dosage")
DISPENSE_ITEM_FIELDS = ("inn", "form", "strength", "quantity", "product", "batch", "expiry")
DISPENSE_FIELDS = ("paper_serial", "prescription_number", "patient_document", "pinfl",
                   "paper_reason", "day", "time")
REASON_WORDS = {"outage": _l("Technical failure (outage)"), "emergency": _l("Emergency")}


def _(message: str) -> str:
    """Marks an error's English msgid for extraction; error_text() translates it when shown."""
    return message


def may_write_paper() -> None:
    if not (g.actor.can("prescribe") or g.actor.can("register_patient")):
        g.actor.require("prescribe")


def paper_time(day: str, clock: str, field: str) -> str:
    """The date and time written on the paper (Tashkent) as a UTC instant."""
    try:
        moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock or "00:00"),
                                  tzinfo=TASHKENT)
    except ValueError:
        raise ValidationFailed(_("Give the date and time written on the paper"),
                               field=field) from None
    return to_instant(moment)


def _rows(fields: tuple[str, ...]) -> list[dict]:
    return [{name: request.form.get(f"{name}_{i}", "").strip() for name in fields}
            for i in range(PAPER_ROWS)]


def _items(rows: list[dict]) -> tuple[list[dict], list[int]]:
    """Filled rows as service items (quantities as numbers), and each item's row on screen."""
    items, where = [], []
    for index, row in enumerate(rows):
        if not any(row.values()):
            continue
        quantity = row.get("quantity", "")
        items.append({**row, "quantity": int(quantity) if quantity.isascii()
                      and quantity.isdigit() else quantity})
        where.append(index)
    return items, where


def _error_place(error: ProtocolError | None, where: list[int]) -> tuple[int | None, str | None]:
    match = ITEM_ERROR.match(error.field or "") if error else None
    if not match or int(match.group(1)) >= len(where):
        return None, None
    return where[int(match.group(1))], match.group(2) or "inn"


# -- the doctor's or registrar's side -----------------------------------------------------

@bp.route("/desk/patients/<patient_id>/paper-prescription", methods=["GET", "POST"])
@signed_in
def paper_prescription(patient_id: str):
    may_write_paper()
    summary = patient_summary(patient_id)
    form = {name: request.form.get(name, "").strip()
            for name in ("paper_serial", "practitioner_id", "paper_reason", "day", "time")}
    form["practitioner_id"] = form["practitioner_id"] or g.actor.practitioner_id or ""
    rows = _rows(RX_ITEM_FIELDS)
    error, where = None, []
    if request.method == "POST":
        items, where = _items(rows)
        try:
            issued_at = paper_time(form["day"], form["time"], "issued_at")
            result = paper.enter_paper_prescription(
                store(), g.actor, facility_id=store().facility_id,
                paper_serial=form["paper_serial"],
                patient_id=patient_id, practitioner_id=form["practitioner_id"], items=items,
                paper_reason=form["paper_reason"], issued_at=issued_at)
        except ProtocolError as e:
            error = e
        else:
            flash(gettext("The paper prescription %(number)s is entered.",
                          number=result["number"]), "ok")
            if "serial_not_held" in result["warnings"]:
                flash(gettext("This serial is not from a pad this facility holds: the hub will"
                              " check it."), "warn")
            return redirect(url_for("desk.patient", patient_id=patient_id))
    row, field = _error_place(error, where)
    return render("paper/prescription.html", error, patient=summary, form=form, rows=rows,
                  error_row=row, error_item_field=field, reasons=paper.PAPER_REASONS,
                  reason_words=REASON_WORDS,
                  doctors=facilities.list_practitioners(store(), facility_id=store().facility_id),
                  inns=[d.inn for d in Catalogue.load()], today=ui_now().date().isoformat())


@bp.get("/desk/paper-blank")
@signed_in
def blank():
    """A printable blank paper prescription carrying a serial of a pad this facility holds."""
    may_write_paper()
    pads = paper.pads(store(), store().facility_id)
    chosen = next((p for p in pads if p["pad_id"] == request.args.get("pad")), None)
    number = request.args.get("number", "")
    serial, error = None, None
    if chosen is not None:
        value = int(number) if number.isdigit() else chosen["first_serial"]
        if chosen["first_serial"] <= value <= chosen["last_serial"]:
            serial = paper.format_serial(chosen["series"], value)
        else:
            error = ValidationFailed(_("Choose a number from %(first)s to %(last)s"),
                                     field="number", first=chosen["first_serial"],
                                     last=chosen["last_serial"])
    facility = facilities.get_facility(store(), store().facility_id)
    return render("paper/blank.html", error, pads=pads, chosen=chosen, number=number,
                  serial=serial, facility=facility)


# -- the pharmacy's paper dispense log ---------------------------------------------------

@bp.route("/counter/paper", methods=["GET", "POST"])
@signed_in
def paper_dispense():
    g.actor.require("dispense")
    form = {name: request.form.get(name, "").strip() for name in DISPENSE_FIELDS}
    rows = _rows(DISPENSE_ITEM_FIELDS)
    error, where = None, []
    if request.method == "POST":
        items, where = _items(rows)
        optional = {k: form[k] or None for k in ("paper_serial", "prescription_number",
                                                 "patient_document", "pinfl")}
        try:
            dispensed_at = paper_time(form["day"], form["time"], "dispensed_at")
            paper.enter_paper_dispense(store(), g.actor, facility_id=store().facility_id,
                                       items=items, paper_reason=form["paper_reason"],
                                       dispensed_at=dispensed_at, **optional)
        except ProtocolError as e:
            error = e
        else:
            flash(gettext("The paper dispense is entered; the hub reconciles it."), "ok")
            return redirect(url_for(".paper_dispense"))
    row, field = _error_place(error, where)
    return render("paper/dispense.html", error, form=form, rows=rows, error_row=row,
                  error_item_field=field, reasons=paper.PAPER_REASONS, reason_words=REASON_WORDS,
                  inns=[d.inn for d in Catalogue.load()], today=ui_now().date().isoformat())
