"""The pharmacy counter: scan a code (a USB scanner types digits then Enter), see the verdict
at once, dispense fully or partly, find prescriptions by PINFL or identity document.

The scanned code lives in the signed session, so every form posts and redirects back
(post/redirect/get): reloading the page never dispenses twice. The verdict is worked out again
on every page from the code, so it always shows what this node knows now (a dispense made at
another till, a cancellation just synced).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext

from edge_node.errors import Conflict, ValidationFailed
from edge_node.services import clock, counter_aids, dispensing, online_dispense, remote_requests
from edge_node.services.patient_search import identifier_of
from edge_node.web.context import hub_client, store, trust_list
from sync_protocol.errors import ProtocolError
from sync_protocol.mrz import MAX_MRZ_TEXT
from sync_protocol.timeutil import utc_now

from . import verdicts
from .auth import signed_in, to_sign_in
from .common import error_text, fmt_datetime, remember_language
from .errors import register_html_errors
from .security import protect
from .workstation import render

log = logging.getLogger(__name__)

bp = Blueprint("counter", __name__, url_prefix="/ui/counter")
protect(bp)
bp.after_request(remember_language)
register_html_errors(bp, "desk", to_sign_in)

CODE_KEY = "counter_code"  # the last scanned code, until the next scan or "clear"
PINFL_KEY = "counter_pinfl"  # the PINFL typed from the ID card for that code, if any
RECEIPT_KEY = "counter_receipt"  # the last dispense made here, for its printable receipt
# A QR code holds at most a few thousand digits; more is not a scan (and would not fit the
# session cookie). The verification core refuses long input anyway; this keeps the cookie small.
MAX_CODE_CHARS = 3000
DISPENSE_FIELDS = ("quantity", "product", "batch", "expiry")


def _(message: str) -> str:
    """Marks an error's English msgid for extraction; error_text() translates it when shown."""
    return message


def current_verdict() -> dispensing.Verdict | None:
    code = session.get(CODE_KEY)
    if not code:
        return None
    return dispensing.verdict_for(store(), g.actor, trust_list(), code,
                                 typed_pinfl=session.get(PINFL_KEY) or None)


# Verdicts the hub's word can change: the node thinks something may still be handed over.
ASK_HUB = frozenset({"valid", "partly_dispensed"})


def current_hub_view(verdict: dispensing.Verdict | None) -> online_dispense.HubView | None:
    """What the hub says of the prescription now (online), or why it cannot be asked."""
    if verdict is None or not verdict.prescription or verdict.code not in ASK_HUB:
        return None
    client = hub_client()
    if client is None:
        return online_dispense.HubView(False, False, None)
    fresh, last = online_dispense.freshness(store(), True)
    if not fresh:  # known offline or out of date: do not make the pharmacist wait for it
        return online_dispense.HubView(True, False, last)
    return online_dispense.hub_view(store(), client, verdict.prescription["prescription_id"],
                                    session.get(CODE_KEY))


def _page(error: ProtocolError | None = None, item_no: int | None = None,
          form: dict | None = None, pinfl_error: ProtocolError | None = None):
    verdict = current_verdict()
    hub = current_hub_view(verdict)
    page, status = render("counter/scan.html", error, verdict=verdict,
                  view=verdicts.describe(verdict, hub) if verdict else None,
                  typed_pinfl=session.get(PINFL_KEY, ""), error_item=item_no,
                  form=form or {},
                  pinfl_error=error_text(pinfl_error) if pinfl_error else None,
                  now=utc_now(), today=utc_now().date().isoformat(),
                  receipt_id=session.get(RECEIPT_KEY))
    return page, (getattr(pinfl_error, "http_status", 422) if pinfl_error else status)


@bp.get("/")
@signed_in
def home():
    g.actor.require("verify_prescription")
    return _page()


@bp.post("/scan")
@signed_in
def scan():
    """What the scanner typed (digits, then Enter) and, optionally, the ID card's PINFL."""
    g.actor.require("verify_prescription")
    code = request.form.get("code", "").strip()[:MAX_CODE_CHARS]
    typed = request.form.get("pinfl", "").strip()
    try:
        pinfl = dispensing.parse_typed_pinfl(typed)
    except ProtocolError as e:
        session.pop(CODE_KEY, None)
        session.pop(PINFL_KEY, None)
        return _page(pinfl_error=e)
    if not code:
        return _page(ValidationFailed(_("Scan the QR code or type its digits"), field="code"))
    if counter_aids.looks_like_number(code):  # typed from the paper: the QR would not scan
        try:
            code = counter_aids.find_by_number(store(), g.actor, number=code, pinfl=pinfl)
        except ProtocolError as e:
            session.pop(CODE_KEY, None)
            return _page(e)
    # Kept now (a write, on this POST): the page shown next only reads its verdict.
    dispensing.record_scan(store(), g.actor, trust_list(), code, typed_pinfl=pinfl)
    session[CODE_KEY] = code
    session[PINFL_KEY] = pinfl or ""
    session.pop(RECEIPT_KEY, None)
    return redirect(url_for(".home", _anchor="verdict"))


@bp.post("/clear")
@signed_in
def clear():
    g.actor.require("verify_prescription")
    session.pop(CODE_KEY, None)
    session.pop(PINFL_KEY, None)
    session.pop(RECEIPT_KEY, None)
    return redirect(url_for(".home"))


def _quantity(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else text


@bp.post("/dispense")
@signed_in
def dispense():
    g.actor.require("dispense")
    form = {name: request.form.get(name, "").strip() for name in DISPENSE_FIELDS}
    try:
        item_no = int(request.form.get("item_no", ""))
        shown_remaining = int(request.form.get("remaining", ""))
    except ValueError:
        item_no, shown_remaining = 0, -1
    verdict = current_verdict()
    try:
        if verdict is None or not verdict.may_dispense or not verdict.prescription or \
                verdict.prescription["prescription_id"] != request.form.get("prescription_id"):
            raise Conflict(_("Scan the prescription again: what is on the screen is no"
                             " longer its state"), field="code", code="verdict_changed")
        state = next((i for i in verdict.items if i["item_no"] == item_no), None)
        if state is None or state["remaining_in_fill"] != shown_remaining:
            # A second click, or another till dispensed meanwhile: never hand over twice.
            raise Conflict(_("Scan the prescription again: what is on the screen is no"
                             " longer its state"), field="code", code="verdict_changed")
        quantity = _quantity(form["quantity"])
        if not isinstance(quantity, int):
            raise ValidationFailed("Quantity must be a whole number of at least 1",
                                   field="quantity")
        result = online_dispense.dispense_with_hub(
            store(), g.actor, hub_client(), config=current_app.config,
            prescription_id=verdict.prescription["prescription_id"], item_no=item_no,
            quantity=quantity, product=form["product"], batch=form["batch"],
            expiry=form["expiry"], code=session.get(CODE_KEY),
            offline=request.form.get("mode") != verdicts.ONLINE)
    except online_dispense.ClaimRefused as e:
        return _page(refusal(e), item_no=item_no, form=form)
    except ProtocolError as e:
        if e.code == "already_dispensed":  # where and when, in Tashkent time
            e = Conflict(e.message, field=e.field, code=e.code, where=e.params["where"],
                         when=fmt_datetime(e.params["when"]))
        return _page(e, item_no=item_no, form=form)
    log.info("dispensed %s of item %s of %s (%s)", quantity, item_no,
             verdict.prescription["number"], result["mode"])
    flash(gettext("Dispensed %(quantity)s of %(inn)s. Left in this fill: %(left)s.",
                  quantity=quantity, inn=state["inn"], left=result["remaining_in_fill"]), "ok")
    session[RECEIPT_KEY] = result["dispense_id"]
    return redirect(url_for(".home", _anchor="verdict"))


# Refusals that are not about a dispense elsewhere (sync_protocol.claims reasons).
REFUSALS = {
    "nothing_left": _("The hub refused: nothing of this remains to dispense"),
    "cancelled": _("The hub refused: the doctor cancelled this prescription"),
    "outside_validity": _("The hub refused: the prescription is outside its validity"),
    "unknown_prescription": _("The hub refused: it does not know this prescription"),
    "unknown_item": _("The hub refused: it does not know this prescription"),
}


def refusal(error: online_dispense.ClaimRefused) -> Conflict:
    """The hub's refusal in words: where and when, in Tashkent time."""
    latest = online_dispense.latest_elsewhere(error.answer)
    reason = error.answer.get("reason")
    if latest is None or reason not in ("nothing_left", "more_than_remains"):
        return Conflict(REFUSALS.get(reason, REFUSALS["nothing_left"]), field="quantity",
                        code=error.code)
    message = (_("Refused by the hub: being dispensed at %(where)s (claimed at %(when)s)")
               if latest["claim"] else
               _("Refused by the hub: dispensed at %(where)s at %(when)s"))
    return Conflict(message, field="quantity", code=error.code,
                    where=latest["facility_name"], when=fmt_datetime(latest["when"]))


@bp.get("/receipt/<dispense_id>")
@signed_in
def receipt(dispense_id: str):
    """The printable dispense receipt."""
    g.actor.require("dispense")
    return render("counter/receipt.html", receipt=counter_aids.receipt(
        store(), g.actor, dispense_id[:40]))


@bp.post("/clock")
@signed_in
def confirm_clock():
    """The pharmacist saw the node's date and time on the screen and says they are right."""
    g.actor.require("dispense")
    clock.confirm_clock(store(), f"staff:{g.actor.actor_id}")
    flash(gettext("The date and time are confirmed."), "ok")
    return redirect(url_for(".home", _anchor="verdict"))


@bp.get("/lookup")
@signed_in
def lookup():
    """No phone: the patient's active prescriptions by PINFL or identity document."""
    g.actor.require("verify_prescription")
    query = request.args.get("q", "").strip()[:MAX_MRZ_TEXT]
    if not query:
        return render("counter/lookup.html", query=query, found=None)
    compact = query.replace(" ", "")
    try:
        # An MRZ read from the card gives the PINFL (or the document); else as typed.
        ids = identifier_of(query) or {"document": compact}
        found = dispensing.find_by_identity(store(), g.actor, pinfl=ids.get("pinfl"),
                                            document=ids.get("document"))
    except ProtocolError as e:
        return render("counter/lookup.html", e, query=query, found=None)
    trusted = trust_list()
    for row in found["prescriptions"]:
        # A verdict per prescription from its stored code; paper ones have none to check.
        verdict = dispensing.verdict_for(store(), g.actor, trusted, row["qr"]) \
            if row.get("qr") else None
        row["view"] = verdicts.describe(verdict) if verdict else None
        row["medicines"] = counter_aids.medicine_names(store(), row["prescription_id"])
    return render("counter/lookup.html", query=query, found=found)


@bp.route("/pickup", methods=["GET", "POST"])
@signed_in
def pickup():
    """A remote prescription (1003 call centre): the patient's document or PINFL and the
    six-digit code from the SMS. Found, it opens on the counter like a scanned code."""
    g.actor.require("verify_prescription")
    form = {"identity": request.form.get("identity", "").strip()[:40],
            "code": request.form.get("code", "").strip()[:20]}
    if request.method == "GET":
        return render("counter/pickup.html", form=form)
    compact = form["identity"].replace(" ", "")
    is_pinfl = compact.isdigit()
    try:
        if not compact:
            raise ValidationFailed(_("Give the patient's identity document or PINFL"),
                                   field="identity")
        found = remote_requests.find_by_pickup_code(
            store(), g.actor, code=form["code"], pinfl=compact if is_pinfl else None,
            document=None if is_pinfl else compact)
        prescription = found["prescriptions"][0]
        if not prescription.get("qr"):
            raise Conflict(_("This prescription has no code to check: record it in the paper"
                             " dispense log"), field="code", code="no_code")
    except ProtocolError as e:
        return render("counter/pickup.html", e, form=form)
    # The same verdict and dispense form as a scan; the PINFL it was found by is the typed one.
    session[CODE_KEY] = prescription["qr"]
    session[PINFL_KEY] = found["pinfl"] or ""
    log.info("remote prescription %s opened by pickup code", prescription["number"])
    return redirect(url_for(".home", _anchor="verdict"))
