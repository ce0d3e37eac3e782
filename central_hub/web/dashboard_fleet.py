"""The fleet pages of the hub dashboard: which facilities cannot serve patients safely now,
and why. Behind the staff sign-in of dashboard_pages, in uz / ru / en, with the same CSP
(no script at all: charts are server-rendered SVG, refresh is a meta refresh of the same URL,
so filters in the query string survive it).

    GET /dashboard/fleet                    regions: nodes per state, conflicts, quarantine,
                                            charts (events, lag, conflicts, offline nodes)
    GET /dashboard/fleet/region/<region>    its nodes: state, last contact, pending, version,
                                            certificate expiry, last error   ?state=
    GET /dashboard/fleet/node/<node_id>     sync history as a chart and a table, errors in words
    GET /dashboard/fleet/conflicts          conflicts in words   ?region=&kind=&state=&age=
    GET /dashboard/fleet/nodes.csv, /dashboard/fleet/conflicts.csv   the same lists as CSV

Strings live in their own catalogue (templates/translations/<lang>/LC_MESSAGES/fleet.po),
falling back to the dashboard's, so the pages' catalogues are edited apart.
"""

from __future__ import annotations

import csv
import functools
import gettext
import io
import logging
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    url_for,
)

from sync_protocol.catalogues import compile_catalogue
from sync_protocol.event_types import CONFLICT_KINDS

from .. import charts, conflict_words, fleet, monitoring
from ..conflict_review import STATES
from ..errors import HubError
from . import dashboard_pages
from .context import hub
from .i18n import LOCALES, TRANSLATIONS, local, page_translations, select_locale

log = logging.getLogger(__name__)

bp = Blueprint("fleet", __name__, url_prefix="/dashboard/fleet", template_folder="templates")

# Days of lag and offline nodes shown on the long charts, one point per WEEK_STEP_HOURS.
LONG_DAYS = 7
WEEK_STEP_HOURS = 6
CATALOGUE = "fleet.po"
# CSV exports are sent in pieces of about this size.
CSV_FLUSH_BYTES = 64 * 1024

# Words for codes shown on these pages (English msgids, fleet.po).
WORDS = {
    "healthy": "Healthy", "lagging": "Lagging", "offline": "Offline", "failing": "Failing",
    "push": "push", "pull": "pull", "trust": "trust list", "ok": "done",
    "clock_skew": "The node's clock differs too much from the hub's",
    "revoked": "The node's certificate has been revoked",
    "unknown_key": "The hub does not know the node's certificate",
    "bad_signature": "The request's signature is wrong",
    "replayed": "The same request was sent twice",
    "malformed_auth": "The request was not signed properly",
    "too_large": "The batch was too large; the node sends smaller ones",
    "busy": "The hub was busy; the node retries later",
    "node_mismatch": "The batch names another node",
    "bad_field": "The node sent data the hub cannot read",
    "chain_broken": "The node's event chain is broken",
    "phone": "phone", "name": "name", "document": "identity document", "address": "address",
}
ERROR_FALLBACK = "The request failed (%(code)s)"


@functools.cache
def fleet_translations(locale: str) -> gettext.NullTranslations:
    """This page group's strings, falling back to the dashboard's catalogue."""
    return compile_catalogue(TRANSLATIONS / locale / "LC_MESSAGES" / CATALOGUE, locale,
                             fallback=page_translations(locale))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.before_request
def require_staff():
    return dashboard_pages.require_staff()


@bp.after_request
def headers(response: Response) -> Response:
    return dashboard_pages.page_headers(response)


# -- rendering ------------------------------------------------------------------------------

def _translate():
    return fleet_translations(select_locale()).gettext


def word(code: str | None) -> str:
    translate = _translate()
    if not code:
        return ""
    if code in WORDS:
        return translate(WORDS[code])
    return translate(dashboard_pages.NAMES.get(code, code))


def error_words(code: str) -> str:
    if code in WORDS:
        return word(code)
    return _translate()(ERROR_FALLBACK) % {"code": code}


def _render(template: str, status: int = 200, **context: Any) -> Response:
    translate = _translate()
    locale = select_locale()
    token = request.cookies.get(dashboard_pages.CSRF_COOKIE) or secrets.token_urlsafe(32)

    def lang_link(code: str) -> str:
        return url_for(request.endpoint or "", **{**(request.view_args or {}),
                                                  **request.args.to_dict(), "lang": code})

    body = render_template(template, _=translate, lang=locale, locales=LOCALES, local=local,
                           lang_link=lang_link, lang_url=lang_link, staff=g.get("staff"),
                           csrf=token, word=word, error_words=error_words,
                           lag=dashboard_pages.lag_text,
                           refresh=int(hub().config["DASHBOARD_REFRESH_SECONDS"]),
                           updated=local(_instant(hub().now())), **context)
    response = Response(body, status=status, mimetype="text/html")
    response.set_cookie(dashboard_pages.CSRF_COOKIE, token, samesite="Strict", httponly=True,
                        secure=bool(hub().config["SECURE_COOKIES"]))
    if request.args.get("lang") in LOCALES:
        response.set_cookie("lang", locale, samesite="Strict", httponly=True)
    return response


def _instant(moment: datetime) -> str:
    from sync_protocol.timeutil import to_instant
    return to_instant(moment)


def _settings() -> monitoring.HistorySettings:
    return monitoring.HistorySettings.from_config(hub().config)


def _trust():
    current = hub()
    return current.trust.trust_list if current.trust.initialised else None


def _short_hours(labels: list[str]) -> list[str]:
    """UTC hour buckets ('2026-12-06T04') in Tashkent time: '09:00' on a day's chart,
    '12-06 09h' on a week's."""
    shown = [local(label + ":00:00Z") for label in labels]
    if len(labels) <= 24:
        return [text[11:] for text in shown]
    return [text[5:13] + "h" for text in shown]


# -- pages ----------------------------------------------------------------------------------

@bp.get("/")
def overview():
    current = hub()
    now, settings = current.now(), _settings()
    sampler = current_app.extensions.get(monitoring.SAMPLER)
    if sampler is not None:  # this hour's lag and offline counts, if no sync took them yet
        sampler.sample_if_due(current.storage, now, settings)
    translate = _translate()
    figures = {name: charts.cached((name, select_locale()), data, draw, _chart_age())
               for name, (data, draw) in _overview_charts(current.storage, now,
                                                          translate).items()}
    return _render("fleet/overview.html", regions=fleet.regions(current.storage, now, settings),
                   states=monitoring.STATES, figures=figures,
                   silent_after=int(settings.silent_after.total_seconds()))


def _chart_age() -> float:
    return float(hub().config["CHART_CACHE_SECONDS"])


def _overview_charts(storage, now: datetime, translate) -> dict[str, tuple[Any, Any]]:
    """Each chart's data (read now) and how to draw it (only when the cache has no drawing)."""
    events = fleet.hourly(storage, "events_ingested", now, 24)
    lag_hours = fleet.hourly(storage, "lag_seconds_max", now, LONG_DAYS * 24)
    lag_day = fleet.last_hours(lag_hours, 24)
    lag_week = fleet.coarser(lag_hours, WEEK_STEP_HOURS)
    offline = fleet.coarser(fleet.hourly(storage, "nodes_offline", now, LONG_DAYS * 24),
                            WEEK_STEP_HOURS)
    per_day = fleet.conflicts_per_day(storage, now)
    conflict_series = {f"{translate(what)}: {word(kind)}": values
                       for (what, kind), values in per_day["series"].items()}

    def hours(data, title, unit, draw=charts.line):
        return data, lambda: draw(translate(title), data["labels"], data["series"],
                                  translate(unit), short_labels=_short_hours(data["labels"]))

    return {
        "events": hours(events, "Events ingested per hour, by region", "events", charts.bars),
        "lag_day": hours(lag_day, "Worst sync lag per hour, last 24 hours", "seconds"),
        "lag_week": hours(lag_week, "Worst sync lag per hour, last 7 days", "seconds"),
        "conflicts": (per_day, lambda: charts.bars(
            translate("Conflicts opened and resolved per day, by kind"), per_day["labels"],
            conflict_series, translate("conflicts"),
            short_labels=[d[5:] for d in per_day["labels"]])),
        "offline": hours(offline, "Nodes offline, last 7 days", "nodes"),
    }


@bp.get("/region/<region>")
def region(region: str):
    current = hub()
    state = request.args.get("state", "")
    if state and state not in monitoring.STATES:
        return _render("fleet/region.html", 400, region=region, nodes=[], state=state,
                       states=monitoring.STATES,
                       error=_translate()("State must be one of %(states)s") % {
                           "states": ", ".join(word(s) for s in monitoring.STATES)})
    rows = fleet.region_nodes(current.storage, region, current.now(), _settings(), _trust())
    if not rows:
        abort(404)
    shown = [r for r in rows if not state or r["state"] == state]
    return _render("fleet/region.html", region=region, nodes=shown, state=state,
                   states=monitoring.STATES, error=None, total=len(rows))


@bp.get("/node/<node_id>")
def node(node_id: str):
    current = hub()
    detail = fleet.node_detail(current.storage, node_id, current.now(), _settings(), _trust())
    if detail is None:
        abort(404)
    attempts = list(reversed(detail["attempts"]))
    labels = [local(a["at"])[5:] for a in attempts]
    translate = _translate()
    key = (node_id, select_locale())
    figure = charts.cached(("history", *key), attempts, lambda: charts.bars(
        translate("Sync attempts: events up and down"), labels,
        {translate("events pushed"): [a["events"] if a["kind"] == "push" else 0
                                      for a in attempts],
         translate("events pulled"): [a["events"] if a["kind"] == "pull" else 0
                                      for a in attempts]}, translate("events")), _chart_age())
    durations = charts.cached(("durations", *key), attempts, lambda: charts.line(
        translate("Sync attempts: duration"), labels,
        {translate("milliseconds"): [a["duration_ms"] for a in attempts]},
        translate("milliseconds")), _chart_age())
    return _render("fleet/node.html", node=detail, figure=figure, durations=durations)


@bp.get("/conflicts")
def conflicts():
    current = hub()
    try:
        filters = conflict_words.parse_filters(request.args.to_dict())
        error = None
    except HubError as e:
        filters, error = {}, dashboard_pages.message_of(e)
    items = [] if error else conflict_words.find(current.storage, filters, current.now())
    translate = _translate()
    explained = list(zip(items, conflict_words.explain_all(current.storage, items, translate),
                         strict=True))
    return _render("fleet/conflicts.html", 400 if error else 200, items=explained,
                   error=error, filters=request.args, kinds=CONFLICT_KINDS, states=STATES,
                   regions=fleet.region_names(current.storage))


# -- CSV ------------------------------------------------------------------------------------

NODE_COLUMNS = ("node_id", "region", "facility_code", "facility", "kind", "state",
                "last_contact", "seconds_since_contact", "pending", "acked_seq", "version",
                "certificate_expires", "last_error_code", "last_error")
CONFLICT_COLUMNS = ("conflict_id", "kind", "state", "region", "raised_at", "prescription",
                    "facilities", "what", "dispenses", "what_to_do")


def _csv(name: str, columns: tuple[str, ...], rows: Iterable[list[Any]]) -> Response:
    """Streamed: each row is sent as it is made, so a long export starts at once."""
    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            # A cell starting with = + - @ would run as a formula in a spreadsheet.
            writer.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v
                             for v in row])
            if out.tell() >= CSV_FLUSH_BYTES:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    # The rows read no request state (the caller bound storage, clock and words), so the
    # generator runs without the request context.
    return Response(lines(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={name}"})


@bp.get("/nodes.csv")
def nodes_csv():
    current = hub()
    now, settings, trust = current.now(), _settings(), _trust()
    wanted = request.args.get("region") or None
    names = [wanted] if wanted else fleet.region_names(current.storage)

    def rows() -> Iterator[list[Any]]:
        for name in names:  # one region's nodes at a time
            for n in fleet.region_nodes(current.storage, name, now, settings, trust):
                yield [n["node_id"], n["region"], n["facility_code"], n["facility_name"],
                       n["kind"], n["state"], n["last_seen"], n["silent_seconds"],
                       n["pending"], n["acked_seq"], n["version"], n["cert_expires"],
                       n["last_error_code"] or "", n["last_error"] or ""]

    return _csv("nodes.csv", NODE_COLUMNS, rows())


@bp.get("/conflicts.csv")
def conflicts_csv():
    current = hub()
    try:
        filters = conflict_words.parse_filters(request.args.to_dict())
    except HubError as e:
        return Response(dashboard_pages.message_of(e), status=400, mimetype="text/plain")
    return _csv("conflicts.csv", CONFLICT_COLUMNS, conflict_words.csv_rows(
        current.storage, filters, current.now(), _translate()))
