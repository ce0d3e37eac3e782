"""Helpers every screen shares: the clock, languages, dates, the node banner."""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from urllib.parse import quote

from babel.dates import format_date
from flask import Flask, Response, current_app, request, url_for
from flask_babel import gettext

from edge_node.web.app import LOCALES
from edge_node.web.errors import translate, translate_text
from sync_protocol.errors import ProtocolError
from sync_protocol.timeutil import TASHKENT, from_instant, local_date, utc_now

from . import labels
from .i18n import locale_code

log = logging.getLogger(__name__)

LANG_COOKIE = "lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600  # a workstation keeps its language; kiosks reset it
# Days in words kept per (day, pattern, language): a few months of pages in three languages.
FORMATTED_DAYS_KEPT = 2048
# Stored instants (slots, visits) kept converted to Tashkent time: weeks of several doctors.
INSTANTS_KEPT = 8192


def ui_now() -> datetime:
    """The time the screens act at. Tests may pin it (UI_NOW) so that a visit "today" exists
    whatever the hour or holiday the suite runs on; outside TESTING the setting is ignored."""
    pinned = current_app.config.get("UI_NOW")
    if pinned and current_app.testing:
        return from_instant(str(pinned))
    return utc_now()


def today() -> date:
    return local_date(ui_now())


def is_today(instant: str) -> bool:
    return local_date(from_instant(instant)) == today()


def error_text(error: ProtocolError) -> str:
    """The error in the reader's language. Some services name the field only as the error's
    ``field`` while their message says %(field)s: fill it with the field's label."""
    if "permission" in error.params:  # "may not do this": words, never a permission's code
        permission = labels.PERMISSION_WORDS.get(error.params["permission"], labels.SOME_ACTION)
        return translate_text(error.message, {
            **error.message_params, "permission": str(permission),
            "role": labels.label(labels.ROLES, error.params.get("role"))})
    if "%(field)s" in error.message and "field" not in error.params and error.field:
        params = {**error.params, "field": labels.label(labels.FIELDS, error.field)}
        message = gettext(error.message)
        try:
            return message % params
        except (KeyError, ValueError, TypeError):
            return error.text
    return translate(error)


def language_url(code: str) -> str:
    """This page in another language. After a POST the form's page is shown afresh (every
    view that renders a form also answers GET)."""
    return _with_lang(_this_page(), code)


def language_links() -> list[tuple[str, str, str, bool]]:
    """The language bar: (code, name, this page in that language, whether it is current)."""
    page, current = _this_page(), locale_code()
    return [(code, name, _with_lang(page, code), code == current)
            for code, name in labels.LANGUAGES]


def _this_page() -> str:
    """The address language_url() adds ``lang`` to (url_for puts it last, after the rest)."""
    if not request.endpoint or request.url_rule is None:
        return url_for("ui.index")
    if "GET" not in (request.url_rule.methods or ()):  # an action's error page: go home
        return url_for("kiosk.home" if request.blueprint == "kiosk" else "desk.home")
    args = {k: v for k, v in request.args.items() if k != "lang"} \
        if request.method == "GET" else {}
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def _with_lang(url: str, code: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}lang={quote(code, safe='')}"


def static_url(filename: str) -> str:
    """url_for('ui.static', filename=...), kept per script root: three on every page."""
    key = (request.script_root, filename)
    url = _STATIC_URLS.get(key)
    if url is None:
        url = _STATIC_URLS[key] = url_for("ui.static", filename=filename)
    return url


_STATIC_URLS: dict[tuple[str, str], str] = {}


def remember_language(response: Response) -> Response:
    chosen = request.args.get("lang")
    if chosen in LOCALES:
        response.set_cookie(LANG_COOKIE, chosen, max_age=LANG_COOKIE_SECONDS, httponly=True,
                            samesite="Strict",
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


# -- formatting in Tashkent time and the reader's language ---------------------------------

def _moment(instant: str | datetime) -> datetime:
    if isinstance(instant, datetime):
        return instant.astimezone(TASHKENT)
    return _tashkent(str(instant))


@lru_cache(maxsize=INSTANTS_KEPT)
def _tashkent(instant: str) -> datetime:
    """A stored instant in Tashkent time; a week of slots is shown again and again."""
    return from_instant(instant).astimezone(TASHKENT)


def fmt_time(instant: str | datetime) -> str:
    return _moment(instant).strftime("%H:%M")


def fmt_day(value: str | datetime | date) -> str:
    day = value if isinstance(value, date) and not isinstance(value, datetime) else \
        _moment(value).date()
    return _format_day(day, "EEEE, d MMMM", locale_code())


def fmt_short_day(value: date) -> str:
    return _format_day(value, "EEE d MMM", locale_code())


def fmt_datetime(instant: str | datetime) -> str:
    moment = _moment(instant)
    return f"{_format_day(moment.date(), 'd MMMM y', locale_code())}, " \
           f"{moment:%H:%M}"


def fmt_date(value: str | date | None) -> str:
    if not value:
        return ""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return _format_day(day, "d MMMM y", locale_code())


@lru_cache(maxsize=FORMATTED_DAYS_KEPT)
def _format_day(day: date, pattern: str, locale: str) -> str:
    """A day in words; the same few days (this week's slots, visits) are on every page."""
    return format_date(day, pattern, locale=locale)


def install_template_helpers(app: Flask) -> None:
    app.jinja_env.filters.update(tashkent_time=fmt_time, tashkent_day=fmt_day,
                                 tashkent_datetime=fmt_datetime, short_day=fmt_short_day,
                                 long_date=fmt_date)
    from .security import csrf_token

    app.jinja_env.globals.update(
        csrf_token=csrf_token, is_today=is_today,
        language_url=language_url, language_links=language_links, static_url=static_url,
        languages=labels.LANGUAGES, locale_code=locale_code,
        specialty=lambda c: labels.label(labels.SPECIALTIES, c),
        status_label=lambda c: labels.label(labels.STATUSES, c),
        reason_label=lambda c: labels.label(labels.READ_REASONS, c),
        order_label=lambda c: labels.label(labels.ORDER_KINDS, c),
        flag_label=lambda c: labels.label(labels.LAB_FLAGS, c or ""),
        sex_label=lambda c: labels.label(labels.SEXES, c),
        allergy_kind_label=lambda c: labels.label(labels.ALLERGY_KINDS, c),
        severity_label=lambda c: labels.label(labels.SEVERITIES, c),
        role_label=lambda c: labels.label(labels.ROLES, c),
        request_status_label=lambda c: labels.label(labels.REQUEST_STATUSES, c),
        conflict_kind_label=lambda c: labels.label(labels.CONFLICT_KINDS, c),
        conflict_state_label=lambda c: labels.label(labels.CONFLICT_STATES, c),
        drug_form=lambda c: labels.label(labels.DRUG_FORMS, c),
    )
