"""The doctor's side of the workstation: today's patients, the audited card, the visit with
ICD-10 diagnoses, orders and laboratory results; the card links to prescribing (prescribe.py).
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, request, session, url_for
from flask_babel import gettext

from edge_node.errors import Forbidden, ValidationFailed
from edge_node.services import allergies, appointments, card, clinical, icd10_search
from edge_node.web.context import store
from sync_protocol.errors import ProtocolError

from . import labels, prescription_parts
from .auth import signed_in, to_sign_in
from .common import error_text, locale_code, remember_language, today, ui_now
from .errors import register_html_errors
from .security import protect
from .workstation import patient_summary, render, with_patient_names

log = logging.getLogger(__name__)

bp = Blueprint("doctor", __name__, url_prefix="/ui/desk")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

ALLERGY_FORM = "allergy_form"  # the refused allergy form, shown again once
ALLERGY_FIELDS = ("substance", "reaction", "kind", "severity")
CARD_REASON = "card_reason"  # [patient_id, reason]: the reason holds for one patient only
VISIT_TEXT_FIELDS = ("complaints", "notes")


@bp.get("/today", endpoint="today")
@signed_in
def today_list():
    g.actor.require("view_schedule")
    if not g.actor.practitioner_id:
        raise Forbidden("Only a doctor linked to a practitioner record can record visits")
    rows = appointments.list_appointments(store(), g.actor,
                                          practitioner_id=g.actor.practitioner_id, day=today())
    return render("desk/today.html", rows=with_patient_names(
        [r for r in rows if r["status"] != "cancelled"]), today=today())


@bp.route("/patients/<patient_id>/card", methods=["GET", "POST"])
@signed_in
def open_card(patient_id: str):
    g.actor.require("read_card")
    summary = patient_summary(patient_id)
    if request.method == "POST":
        reason = request.form.get("reason", "")
        if reason not in card.READ_REASONS:
            error = ValidationFailed("Say why the card is opened: one of %(reasons)s",
                                     field="reason", reasons=", ".join(
                                         str(labels.READ_REASONS[r]) for r in card.READ_REASONS))
            return render("desk/card_reason.html", error, patient=summary,
                          reasons=card.READ_REASONS)
        session[CARD_REASON] = [patient_id, reason]
        return redirect(url_for(".open_card", patient_id=patient_id))
    remembered = session.get(CARD_REASON) or ["", ""]
    if remembered[0] != patient_id:
        return render("desk/card_reason.html", patient=summary, reasons=card.READ_REASONS)
    data = card.read_card(store(), g.actor, patient_id, remembered[1])
    return render("desk/card.html", patient=summary, card=data, reason=remembered[1],
                  order_kinds=clinical.ORDER_KINDS,
                  prescriptions=prescription_parts.patient_prescriptions(g.actor, patient_id),
                  prescribe_url=prescription_parts.prescribe_url(patient_id),
                  qr_svg=prescription_parts.qr_svg, allergy_kinds=allergies.KINDS,
                  severities=allergies.SEVERITIES,
                  allergy_form=session.pop(ALLERGY_FORM, None) or {})


@bp.post("/patients/<patient_id>/allergies")
@signed_in
def add_allergy(patient_id: str):
    g.actor.require("write_clinical")
    form = {k: request.form.get(k, "").strip()[:600] for k in ALLERGY_FIELDS}
    try:
        allergies.record_allergy(store(), g.actor, patient_id=patient_id,
                                 substance=form["substance"], reaction=form["reaction"],
                                 kind=form["kind"] or "allergy",
                                 severity=form["severity"] or None)
        flash(gettext("The allergy is recorded on the card."), "ok")
    except ProtocolError as e:
        flash(error_text(e), "error")
        session[ALLERGY_FORM] = form  # what was typed comes back to the form
    return redirect(url_for(".open_card", patient_id=patient_id, _anchor="allergies"))


@bp.post("/patients/<patient_id>/allergies/<allergy_id>/retract")
@signed_in
def retract_allergy(patient_id: str, allergy_id: str):
    g.actor.require("write_clinical")
    try:
        allergies.retract_allergy(store(), g.actor, allergy_id,
                                  request.form.get("reason", "").strip()[:600])
        flash(gettext("The allergy is marked as entered in error."), "ok")
    except ProtocolError as e:
        flash(error_text(e), "error")
    return redirect(url_for(".open_card", patient_id=patient_id, _anchor="allergies"))


def _diagnosis_rows(codes: list[str]) -> list[dict]:
    # Checked against WHO's list, shown in the reader's language where the list has it.
    return [{"code": c, "description": clinical.icd10_description(c) and
             icd10_search.title(clinical.normalise_icd10(c), locale_code())} for c in codes]


@bp.route("/patients/<patient_id>/visit", methods=["GET", "POST"])
@signed_in
def visit(patient_id: str):
    g.actor.require("write_clinical")
    summary = patient_summary(patient_id)
    form = {name: request.form.get(name, "") for name in VISIT_TEXT_FIELDS}
    codes = list(dict.fromkeys(c for c in request.form.getlist("code") if c))
    codes = codes[:clinical.MAX_DIAGNOSES]
    query = request.values.get("q", "").strip()[:100]
    appointment_id = request.values.get("appointment_id") or None
    results: list[dict] = []
    error: ProtocolError | None = None
    if request.method == "POST":
        try:
            if request.form.get("add"):
                code = clinical.normalise_icd10(request.form["add"])
                clinical.icd10_description(code)
                if code not in codes:
                    codes.append(code)
            elif request.form.get("remove"):
                codes = [c for c in codes if c != request.form["remove"]]
            elif request.form.get("action") == "save":
                primary = request.form.get("primary") or (codes[0] if codes else "")
                clinical.record_visit(
                    store(), g.actor, patient_id=patient_id, appointment_id=appointment_id,
                    diagnoses=[{"code": c, "primary": c == primary} for c in codes],
                    occurred_at=ui_now(), **form)
                flash(gettext("The visit is recorded."), "ok")
                return redirect(url_for(".open_card", patient_id=patient_id))
        except ProtocolError as e:
            error = e
    if query and not (request.form.get("add") or request.form.get("remove")):
        results = clinical.search_icd10(query, lang=locale_code())
    primary = request.form.get("primary") or (codes[0] if codes else "")
    return render("desk/visit.html", error, patient=summary, form=form, query=query,
                  results=results, chosen=_diagnosis_rows(codes), primary=primary,
                  appointment_id=appointment_id, searched=bool(query))


@bp.post("/patients/<patient_id>/orders")
@signed_in
def add_order(patient_id: str):
    g.actor.require("write_clinical")
    try:
        clinical.record_order(store(), g.actor, visit_id=request.form.get("visit_id", ""),
                              kind=request.form.get("kind", ""),
                              text=request.form.get("text", ""))
        flash(gettext("The order is recorded."), "ok")
    except ProtocolError as e:
        flash(error_text(e), "error")
    return redirect(url_for(".open_card", patient_id=patient_id))


LAB_FIELDS = ("test", "value", "unit", "reference_range", "flag")


@bp.route("/patients/<patient_id>/lab-results", methods=["GET", "POST"])
@signed_in
def lab_result(patient_id: str):
    g.actor.require("write_clinical")
    summary = patient_summary(patient_id)
    form = {name: request.form.get(name, "").strip() for name in LAB_FIELDS}
    if request.method == "POST":
        try:
            clinical.record_lab_result(store(), g.actor, patient_id=patient_id,
                                       observed_at=ui_now(), **form)
        except ProtocolError as e:
            return render("desk/lab_result.html", e, patient=summary, form=form,
                          flags=labels.LAB_FLAGS)
        flash(gettext("The laboratory result is recorded."), "ok")
        return redirect(url_for(".open_card", patient_id=patient_id))
    return render("desk/lab_result.html", patient=summary, form=form, flags=labels.LAB_FLAGS)
