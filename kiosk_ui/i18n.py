"""Translations in templates: the catalogue and the locale are looked up once per request.

Flask-Babel's template callables resolve the request's domain, locale and catalogue again for
every string (a page has fifteen to thirty), which was a fifth of a page's rendering time. The
same objects are kept here for the rest of the request, in Flask-Babel's own per-request
namespace (``g``), so a page still speaks exactly the language Flask-Babel chose for it.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from flask_babel import get_locale, get_translations

log = logging.getLogger(__name__)


def request_translations():
    try:
        return g._ui_translations
    except AttributeError:
        translations = g._ui_translations = get_translations()
        return translations


def locale_code() -> str:
    """The request's language code (uz, ru or en)."""
    try:
        return g._ui_locale_code
    except AttributeError:
        code = g._ui_locale_code = str(get_locale() or current_app.config.get(
            "DEFAULT_LOCALE", "uz"))
        return code


def install(app: Flask) -> None:
    """Replace Flask-Babel's template callables (installed by Babel(app)) with cached ones."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
