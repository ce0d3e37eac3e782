"""The hub pages' one language layer: which language a request gets (`select_locale`), the
page catalogues (`page_translations`), the codes shown on pages (`LABELS`) and `render_page`.

The hub has no flask-babel setup: the .po catalogues under templates/translations are
compiled in memory when first used (sync_protocol.catalogues), and templates get `_` for
gettext. Uzbek first, Russian, English (the msgids).
"""

from __future__ import annotations

import functools
import gettext
import logging
from pathlib import Path
from typing import Any

from flask import Response, render_template, request, url_for

from sync_protocol.catalogues import compile_catalogue
from sync_protocol.timeutil import local_text

log = logging.getLogger(__name__)

LOCALES = ("uz", "ru", "en")
DEFAULT_LOCALE = "uz"
TRANSLATIONS = Path(__file__).parent / "templates" / "translations"
# Codes shown on pages, as English msgids (translated in templates/translations).
LABELS = {
    "serial_not_allocated": "Serial not in a pad of the issuing facility",
    "serial_used_twice": "Serial used twice",
    "quantity_above_prescribed": "Dispensed more than prescribed",
    "paper_while_online": "Paper while the clinic's node was online",
    "e_rx_drug_on_paper_outside_outage": "E-prescription drug dispensed on paper while online",
    "never_matched": "Never matched",
    "outage": "outage", "emergency": "emergency",
    "matched": "matched", "unmatched": "unmatched",
    "id": "by prescription id", "number": "by number", "serial": "by serial",
    "requested": "requested", "approved": "approved", "declined": "declined",
    "open": "open", "acknowledged": "acknowledged", "resolved": "resolved",
}


def local(instant: str | None) -> str:
    """An instant as Tashkent wall time, as pages and CSV exports show it."""
    return local_text(instant) if instant else ""


@functools.cache
def page_translations(locale: str) -> gettext.NullTranslations:
    """The page strings of one language, compiled in memory from its .po catalogue."""
    return compile_catalogue(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)


def select_locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def render_page(template: str, status: int = 200, **context: Any) -> Response:
    locale = select_locale()
    translate = page_translations(locale).gettext

    def label(code: str | None) -> str:
        return translate(LABELS.get(code or "", code or ""))

    def lang_url(code: str) -> str:
        return url_for(request.endpoint or "", **{**request.args.to_dict(), "lang": code})

    body = render_template(template, _=translate, label=label, lang=locale, locales=LOCALES,
                           lang_url=lang_url, local=local, **context)
    response = Response(body, status=status, mimetype="text/html")
    if request.args.get("lang") in LOCALES:
        response.set_cookie("lang", locale, samesite="Strict", httponly=True)
    return response
