"""The doctor writes a prescription by INN: rows of medicines chosen from the catalogue, the
rules shown as he chooses, errors beside the field they concern, then the signed QR code and
a printable page (A5 or A6). Also: marking a patient chronic, cancelling a prescription.

One form with several buttons (find, pick, add, remove, update, sign), so everything works
without JavaScript; the script only fills the suggestions as the doctor types (/ui/drugs).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, flash, g, jsonify, redirect, request, url_for
from flask_babel import gettext

from edge_node.services import allergies, facilities, patients, prescribing, remote_requests
from edge_node.web.context import credentials, store
from sync_protocol.errors import ProtocolError

from . import drug_rules, prescription_parts
from .auth import signed_in, to_sign_in
from .common import error_text, locale_code, remember_language
from .errors import register_html_errors
from .security import protect
from .workstation import patient_summary, render

log = logging.getLogger(__name__)

bp = Blueprint("prescribe", __name__, url_prefix="/ui")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

ITEM_FIELDS = ("inn", "form", "strength", "quantity", "dosage", "repeats",
               "min_days_between_fills")
ITEM_ERROR = re.compile(r"^items\[(\d+)\](?:\.(\w+))?$")
PRINT_SIZES = ("a5", "a6")  # prescription blanks in Uzbekistan are A5; A6 fits a receipt tray


def _number(text: str) -> int | str | None:
    """A whole number from a form field; other text goes to the rules, which name the field."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isascii() and text.isdigit() else text


def read_rows(form) -> list[dict]:
    raw = str(form.get("rows", "1"))
    count = min(max(int(raw), 1), drug_rules.MAX_ITEMS) if raw.isdigit() else 1
    return [{name: form.get(f"{name}_{i}", "").strip() for name in ITEM_FIELDS}
            for i in range(count)]


def _row_view(row: dict, chronic: bool) -> dict:
    """A row with its drug's choices: forms, strengths of the chosen form, rules."""
    drug = drug_rules.find_drug(row["inn"])
    view = {**row, "drug": None, "forms": [], "strengths": [], "badges": [], "refused": False,
            "repeats_allowed": False}
    if drug is None:
        return view
    forms = list(drug.forms)
    chosen = next((f for f in forms if f.form == row["form"]), forms[0])
    strength = row["strength"] if row["strength"] in chosen.strengths else chosen.strengths[0]
    badges = drug_rules.badges(drug, chronic)
    return {**view, "inn": drug.inn, "drug": drug, "name": drug.name(locale_code()),
            "forms": [f.form for f in forms], "form": chosen.form, "unit": chosen.unit,
            "strengths": list(chosen.strengths), "strength": strength, "badges": badges,
            "refused": drug_rules.refusal(drug) is not None,
            "repeats_allowed": chronic and drug.chronic_eligible}


def _drug_codes(drug) -> list[tuple[str, str | None]]:
    """(inn, atc) of a drug and of each of its forms (a form may carry its own ATC code)."""
    return [(drug.inn, drug.atc), *((drug.inn, f.atc) for f in drug.forms)]


def _allergy_matches(patient_id: str, inn: str) -> list[dict]:
    drug = drug_rules.find_drug(inn)
    if drug is None or not patient_id:
        return []
    return allergies.matching_allergies(store(), patient_id, _drug_codes(drug))


def _mark_allergies(results: list[dict], patient_id: str) -> list[dict]:
    """Suggestions of drugs the patient is allergic to carry a red badge first."""
    for row in results:
        matches = _allergy_matches(patient_id, row["inn"])
        if matches:
            row["allergy"] = True
            row["badges"] = [{"tone": "bad", "text": gettext(
                "Allergy: %(reaction)s", reaction=matches[0]["reaction"])}, *row["badges"]]
    return results


def _items(rows: list[dict]) -> list[dict]:
    return [{"inn": r["inn"], "form": r["form"], "strength": r["strength"],
             "quantity": _number(r["quantity"]), "dosage": r["dosage"],
             "repeats": _number(r["repeats"]) or 0,
             "min_days_between_fills": _number(r["min_days_between_fills"])} for r in rows]


def _page(patient_id: str, rows: list[dict], error: ProtocolError | None = None,
          results: dict | None = None, validity: str = "", chronic_error=None,
          chronic_code: str = "", remote: dict | None = None, note: str = ""):
    summary = patient_summary(patient_id)
    chronic = prescribing.is_chronic(store(), patient_id)
    views = [_row_view(r, chronic) for r in rows]
    for view in views:
        view["allergies"] = _allergy_matches(patient_id, view["inn"]) if view["drug"] else []
    where = ITEM_ERROR.match(error.field or "") if error else None
    page, status = render("prescribe/new.html", error, patient=summary, rows=views, chronic=chronic,
                  results=results or {}, validity=validity,
                  cap=drug_rules.validity_cap([r["inn"] for r in rows], chronic),
                  error_row=int(where.group(1)) if where else None,
                  error_item_field=(where.group(2) or "inn") if where else None,
                  max_items=drug_rules.MAX_ITEMS,
                  chronic_error=error_text(chronic_error) if chronic_error else None,
                  chronic_code=chronic_code, remote=remote, note=note,
                  allergy_warning=any(v["allergies"] for v in views),
                  allergy_override=request.form.get("allergy_override", "").strip()[:600],
                  max_note=allergies.MAX_CLINICAL_NOTE)
    return page, (getattr(chronic_error, "http_status", 422) if chronic_error else status)


@bp.route("/desk/patients/<patient_id>/prescribe", methods=["GET", "POST"], endpoint="new")
@signed_in
def new(patient_id: str):
    g.actor.require("prescribe")
    return _form(patient_id)


@bp.route("/desk/requests/<request_id>/prescribe", methods=["GET", "POST"],
          endpoint="for_request")
@signed_in
def for_request(request_id: str):
    """Approving a call-centre request is writing its prescription on this same form: signing
    issues it through remote_requests.approve, which records the decision with it."""
    g.actor.require("prescribe")
    remote = dict(remote_requests.get_request(store(), request_id))
    if remote["status"] != remote_requests.REQUESTED:
        flash(gettext("This request has already been decided."), "error")
        return redirect(url_for("remote_ui.show", request_id=request_id))
    return _form(remote["patient_id"], remote)


def _form(patient_id: str, remote: dict | None = None):
    note = request.form.get("note", "").strip()[:remote_requests.MAX_NOTE] if remote else ""
    if request.method == "GET":
        return _page(patient_id, read_rows({}), remote=remote)
    rows = read_rows(request.form)
    validity = request.form.get("validity_days", "").strip()
    action = request.form.get("action", "")
    results: dict = {}
    if request.form.get("pick"):
        index, _, inn = request.form["pick"].partition(":")
        if index.isdigit() and int(index) < len(rows):
            rows[int(index)].update(inn=inn, form="", strength="")
    elif request.form.get("find", "").isdigit() and int(request.form["find"]) < len(rows):
        index = int(request.form["find"])
        results[index] = _mark_allergies(drug_rules.suggestions(
            rows[index]["inn"], locale_code(),
            prescribing.is_chronic(store(), patient_id)), patient_id)
    elif request.form.get("remove", "").isdigit() and len(rows) > 1:
        rows.pop(min(int(request.form["remove"]), len(rows) - 1))
    elif action == "add" and len(rows) < drug_rules.MAX_ITEMS:
        rows.append(dict.fromkeys(ITEM_FIELDS, ""))
    elif action == "sign":
        return _sign(patient_id, rows, validity, remote, note)
    return _page(patient_id, rows, results=results, validity=validity, remote=remote,
                 note=note)


def _sign(patient_id: str, rows: list[dict], validity: str, remote: dict | None = None,
          note: str = ""):
    filled = [r for r in rows if r["inn"]] or rows[:1]
    override = request.form.get("allergy_override", "").strip() or None
    try:
        signer = credentials()
        # An empty choice takes what the screen showed selected (the first form and
        # strength); anything sent is checked as sent, never replaced.
        shown = [_row_view(r, False) for r in filled]
        items = _items([{**r, "form": r["form"] or v["form"],
                         "strength": r["strength"] or v["strength"]} if v["drug"] else r
                        for r, v in zip(filled, shown, strict=True)])
        if remote:
            issued = remote_requests.approve(
                store(), g.actor, signer, remote["request_id"], items=items,
                validity_days=_number(validity), note=note or None, allergy_override=override)
        else:
            issued = prescribing.issue_prescription(
                store(), g.actor, signer, patient_id=patient_id, items=items,
                validity_days=_number(validity), allergy_override=override)
    except ProtocolError as e:
        return _page(patient_id, filled, e, validity=validity, remote=remote, note=note)
    if remote:
        flash(gettext("The request is approved: prescription %(number)s is signed and the"
                      " patient gets an SMS with the pickup code.", number=issued["number"]),
              "ok")
        return redirect(url_for(".show", prescription_id=issued["prescription_id"]))
    flash(gettext("The prescription %(number)s is signed. Show the QR code to the patient or"
                  " print it.", number=issued["number"]), "ok")
    return redirect(url_for(".show", prescription_id=issued["prescription_id"]))


@bp.post("/desk/patients/<patient_id>/chronic")
@signed_in
def chronic(patient_id: str):
    """Mark the patient chronic for a diagnosis: longer validity and repeats become possible."""
    g.actor.require("write_clinical")
    code = request.form.get("code", "").strip()[:10]
    # Marked while answering a call-centre request: back to that request's form.
    request_id = request.form.get("request_id", "").strip()[:40]
    remote = dict(remote_requests.get_request(store(), request_id)) \
        if request_id and g.actor.can("prescribe") else None
    if remote and remote["patient_id"] != patient_id:
        remote = None
    try:
        prescribing.set_chronic_condition(store(), g.actor, patient_id, code)
    except ProtocolError as e:
        return _page(patient_id, read_rows({}), chronic_error=e, chronic_code=code,
                     remote=remote)
    flash(gettext("The patient is marked chronic for %(code)s.", code=code.upper()), "ok")
    if remote:
        return redirect(url_for(".for_request", request_id=remote["request_id"]))
    return redirect(url_for(".new", patient_id=patient_id))


@bp.get("/drugs")
@signed_in
def drugs():
    """Suggestions for the INN box as the doctor types (the Find button works without)."""
    if not (g.actor.can("prescribe") or g.actor.can("register_patient")):
        g.actor.require("prescribe")
    patient_id = request.args.get("patient_id", "")
    chronic = bool(patient_id) and prescribing.is_chronic(store(), patient_id)
    results = drug_rules.suggestions(request.args.get("q", ""), locale_code(), chronic)
    if patient_id and g.actor.can("prescribe"):
        results = _mark_allergies(results, patient_id)
    return jsonify({"results": results})


# -- the signed prescription: QR code, printing, cancelling -------------------------------

def _show(prescription_id: str, error: ProtocolError | None = None, reason: str = ""):
    g.actor.require("prescribe")
    rx = prescribing.prescription_with_items(store(), g.actor, prescription_id)
    patient = patients.get_summary(store(), rx["patient_id"])
    doctor = facilities.get_practitioner(store(), rx["practitioner_id"])
    facility = facilities.get_facility(store(), rx["facility_id"])
    size = request.args.get("size") if request.args.get("size") in PRINT_SIZES else "a5"
    return render("prescribe/show.html", error, rx=rx, patient=patient, doctor=doctor,
                  facility=facility, size=size, sizes=PRINT_SIZES, reason=reason,
                  qr=prescription_parts.qr_svg(rx.get("qr")),
                  may_cancel=rx["status"] == "active"
                  and rx["practitioner_id"] == g.actor.practitioner_id)


@bp.get("/desk/prescriptions/<prescription_id>")
@signed_in
def show(prescription_id: str):
    return _show(prescription_id)


@bp.post("/desk/prescriptions/<prescription_id>/cancel")
@signed_in
def cancel(prescription_id: str):
    reason = request.form.get("reason", "").strip()
    try:
        prescribing.cancel_prescription(store(), g.actor, prescription_id, reason)
    except ProtocolError as e:
        return _show(prescription_id, e, reason)
    flash(gettext("The prescription is cancelled. Pharmacies learn it at their next sync."),
          "ok")
    return redirect(url_for(".show", prescription_id=prescription_id))
