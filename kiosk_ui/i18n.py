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
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

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


def template_gettext() -> dict:
    """Per render: ``_``, ``gettext`` and ``ngettext`` bound to the request's catalogue, doing
    what Jinja's newstyle callables do (the text is markup, always %-formatted with the
    escaped variables) in one call instead of three."""
    translations = request_translations()
    ugettext, ungettext = translations.ugettext, translations.ungettext

    @pass_eval_context
    def gettext(eval_ctx: EvalContext, string: str, /, **variables) -> str:
        text = ugettext(string)
        # Catalogue text is trusted markup, as in Jinja's own callables; variables are escaped.
        return (Markup(text) if eval_ctx.autoescape else text) % variables  # noqa: S704

    @pass_eval_context
    def ngettext(eval_ctx: EvalContext, singular: str, plural: str, num: int, /,
                 **variables) -> str:
        variables.setdefault("num", num)
        text = ungettext(singular, plural, num)
        return (Markup(text) if eval_ctx.autoescape else text) % variables  # noqa: S704

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def install(app: Flask) -> None:
    """Replace Flask-Babel's template callables (installed by Babel(app)) with cached ones:
    the globals (used by imported macros) and, per render, the context's own."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.context_processor(template_gettext)
