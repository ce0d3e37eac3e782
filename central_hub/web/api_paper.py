"""Paper at the hub's web surface: pad allocation, the reconciliation report (JSON, CSV and a
translated HTML page), and the sync contacts that prove a node was online.

Protected like the dashboard API (central_hub.web.api_dashboard.require_access): a bearer API
token, or loopback clients only when no token is set.

Its page is translated by web.i18n.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from sync_protocol.json_body import parse_json
from sync_protocol.request_signing import HEADER_NODE
from sync_protocol.timeutil import local_date

from .. import paper
from ..errors import HubError
from .api_dashboard import require_access
from .context import EXTENSION, hub, respond
from .i18n import local, render_page

log = logging.getLogger(__name__)

bp = Blueprint("paper", __name__, template_folder="templates")
bp.before_request(require_access)

CONTACTS = "dmed_hub_contacts"
# Successful signed requests of these endpoints prove the node reached the hub.
SYNC_ENDPOINTS = frozenset({"sync.push", "sync.pull", "sync.trust"})
CSV_COLUMNS = ("record", "id", "paper_serial", "number", "paper_time", "entered_at",
               "paper_reason", "status", "matched_with", "matched_by", "detail")


def init_app(app: Flask) -> None:
    """Wire paper into a hub app: routes and online evidence (the reconciliation ingest hook
    is listed by central_hub.composition)."""
    current = app.extensions[EXTENSION]
    app.extensions[CONTACTS] = paper.ContactRecorder(current.storage)
    app.register_blueprint(bp)


@bp.after_app_request
def note_contact(response: Response) -> Response:
    if request.endpoint in SYNC_ENDPOINTS and response.status_code == 200:
        try:
            current_app.extensions[CONTACTS].seen(request.headers[HEADER_NODE], hub().now())
        except Exception:  # noqa: BLE001 - evidence is best effort; the sync succeeded
            log.exception("could not record a sync contact")
    return response


# -- pads -----------------------------------------------------------------------------------

@bp.post("/api/v1/paper/pads")
def allocate():
    data = _json_body()
    pad = paper.allocate_pad(hub().storage, facility_id=_text(data, "facility_id"),
                             series=_text(data, "series"),
                             first_serial=data.get("first_serial"),
                             last_serial=data.get("last_serial"),
                             allocated_by=_text(data, "allocated_by"), now=hub().now())
    return respond(pad, 201)


@bp.get("/api/v1/paper/pads")
def list_pads():
    return respond({"pads": paper.list_pads(hub().storage,
                                            request.args.get("facility") or None)})


# -- reconciliation report ------------------------------------------------------------------

def _report() -> dict[str, Any]:
    current = hub()
    facility = paper.find_facility(current.storage, request.args.get("facility", ""))
    raw = request.args.get("day", "")
    try:
        day = date.fromisoformat(raw) if raw else local_date(current.now())
    except ValueError:
        raise HubError("Day must be YYYY-MM-DD", field="day") from None
    return paper.reconciliation_report(current.storage, facility, day.isoformat())


@bp.get("/api/v1/reconciliation")
def report_json():
    return respond(_report())


@bp.get("/api/v1/reconciliation.csv")
def report_csv():
    report = _report()
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so spreadsheet programs read the Cyrillic and Uzbek right
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))
    name = f"reconciliation-{report['facility']['code']}-{report['day']}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def csv_rows(report: dict[str, Any]) -> list[tuple]:
    """One row per paper prescription, paper dispense and mismatch; times in Tashkent."""
    rows: list[tuple] = []
    for r in report["paper_prescriptions"]:
        rows.append(("prescription", r["prescription_id"], r["paper_serial"], r["number"],
                     local(r["issued_at"]), local(r["entered_at"]), r["paper_reason"],
                     r["status"], " ".join(r["dispense_ids"]), "", _items(r["items"])))
    for r in report["paper_dispenses"]:
        rows.append(("dispense", r["dispense_id"], r["paper_serial"],
                     r["prescription_number"], local(r["dispensed_at"]),
                     local(r["entered_at"]), r["paper_reason"], r["status"],
                     r["prescription_id"] or "", r["matched_by"] or "", _items(r["items"])))
    for m in report["mismatches"]:
        detail = "; ".join(f"{k}={v}" for k, v in sorted(m["details"].items())
                           if k != "reason")
        rows.append(("mismatch", m["conflict_id"], "", "", local(m["raised_at"]), "", "",
                     m["reason"], m["subject_id"], "", detail))
    return rows


def _items(items: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i['inn']} {i['strength']} x{i['quantity']}" for i in items)



@bp.get("/reconciliation")
def report_page():
    facility = request.args.get("facility", "")
    report = _report() if facility else None
    return render_page("paper/reconciliation.html", report=report, facility=facility,
                       day=request.args.get("day") or local_date(hub().now()).isoformat())


# -- request bodies -------------------------------------------------------------------------

def _json_body() -> dict[str, Any]:
    data = parse_json(request.get_data(cache=True)) if request.is_json else None
    if not isinstance(data, dict):
        raise HubError("Request body must be a JSON object", field="body", code="bad_json")
    return data


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise HubError("Field %(name)s is required", field=name, name=name)
    return value.strip()
