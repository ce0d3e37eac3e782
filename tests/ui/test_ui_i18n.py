"""Translations in templates (kiosk_ui.i18n): the request's language, variables escaped, the
same text from a page's own context and from an imported macro."""

from __future__ import annotations

import pytest
from flask import render_template_string
from helpers.ui import translated  # noqa: F401

pytestmark = pytest.mark.usefixtures("catalogues")

PAGE = '{{ _("Hello, %(name)s", name=who) }}|{{ _("Finish") }}|{{ gettext("100%%") }}'
MACRO = ('{% macro hello(who) %}{{ _("Hello, %(name)s", name=who) }}{% endmacro %}'
         '{{ hello(who) }}')


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_template_text_is_in_the_requests_language_with_variables_escaped(app, lang):
    with app.test_request_context(f"/ui/kiosk/?lang={lang}"):
        html = render_template_string(PAGE, who="<b>Ali</b>")
    hello, finish, percent = html.split("|")
    expected = translated(lang, "Hello, %(name)s", name="&lt;b&gt;Ali&lt;/b&gt;")
    assert hello == expected and "<b>" not in html
    assert finish == translated(lang, "Finish")
    assert percent == "100%"


def test_an_imported_macro_speaks_the_same_language(app):
    env = app.jinja_env
    with app.test_request_context("/ui/kiosk/?lang=ru"):
        page = render_template_string('{{ _("Hello, %(name)s", name=who) }}', who="<i>")
        macro = env.from_string(MACRO).render(who="<i>")  # globals only, as an import sees
    assert page == macro == translated("ru", "Hello, %(name)s", name="&lt;i&gt;")
