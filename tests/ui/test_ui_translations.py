"""Every message a screen can show is translated into Uzbek and Russian, and the language
switch changes what the screen says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers.ui import kiosk_sign_in, text_of  # noqa: F401

from kiosk_ui import extract_messages as em

pytestmark = pytest.mark.usefixtures("catalogues")

PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")


@pytest.fixture(scope="module")
def service_msgids():
    return em.service_messages()


@pytest.fixture(scope="module")
def ui_msgids():
    return em.ui_messages()


def test_the_extractor_sees_the_services_messages(service_msgids):
    # One of each way a message is raised: a leaf class, a sync_protocol leaf, a helper that
    # builds the error (prescribing_rules._fail), and a gettext call.
    for msgid in ("This time is already booked; choose another",
                  "PINFL check digit (digit 14) is wrong",
                  "Something went wrong on this node; the change was not saved"):
        assert msgid in service_msgids
    assert len(service_msgids) > 150


def test_the_extractor_follows_subclasses_and_helpers(tmp_path):
    source = '''
class ProtocolError(Exception): ...
class Leaf(ProtocolError): ...
class Deeper(Leaf): ...
def _make(field: str, message: str) -> Deeper:
    return Deeper(message, field=field)
def unrelated(message):
    return message
raise Deeper("from a class")
raise _make("f", "from a helper")
raise unrelated("not an error")
raise Leaf(message="by keyword")
'''
    trees = {Path(em.ROOT / "x.py"): ast.parse(source)}
    assert em.error_classes(trees) == {"ProtocolError", "Leaf", "Deeper"}
    assert set(em.service_messages(trees)) == {"from a class", "from a helper", "by keyword"}


@pytest.mark.parametrize("locale", em.REQUIRED_LOCALES)
def test_every_service_message_has_a_translation(service_msgids, locale):
    missing = em.untranslated(em.SERVICE_CATALOGUE, service_msgids, (locale,))
    assert missing == {}, ("run python -m kiosk_ui.extract_messages and translate", missing)


@pytest.mark.parametrize("locale", em.REQUIRED_LOCALES)
def test_every_screen_string_has_a_translation(ui_msgids, locale):
    missing = em.untranslated(em.UI_CATALOGUE, ui_msgids, (locale,))
    assert missing == {}, ("run python -m kiosk_ui.extract_messages and translate", missing)


@pytest.mark.parametrize("directory", [em.SERVICE_CATALOGUE, em.UI_CATALOGUE],
                         ids=["services", "screens"])
@pytest.mark.parametrize("locale", em.REQUIRED_LOCALES)
def test_translations_keep_every_placeholder(directory, locale):
    catalog = em.read_catalogue(directory, locale)
    for message in catalog:
        if message.id and message.string:
            assert sorted(PLACEHOLDER.findall(message.id)) == \
                sorted(PLACEHOLDER.findall(message.string)), message.id


def test_uzbek_is_latin_and_russian_is_cyrillic():
    for message in em.read_catalogue(em.UI_CATALOGUE, "uz"):
        assert not re.search(r"[А-Яа-яЁё]", message.string or ""), message.id
    for message in em.read_catalogue(em.UI_CATALOGUE, "ru"):
        if message.id:
            assert re.search(r"[А-Яа-яЁё]", message.string), message.id


def test_the_language_switch_changes_the_kiosk(client, seeded):
    pages = {lang: text_of(client.get(f"/ui/kiosk/identify?lang={lang}").text)
             for lang in ("uz", "ru", "en")}
    assert "Enter your PINFL (14 digits)" in pages["en"]
    assert "Введите ваш ПИНФЛ (14 цифр)" in pages["ru"]
    assert "JShShIRingizni kiriting (14 ta raqam)" in pages["uz"]
    assert len({pages["uz"], pages["ru"], pages["en"]}) == 3


def test_the_chosen_language_is_remembered(client, seeded):
    response = client.get("/ui/desk/sign-in?lang=ru")
    assert "lang=ru" in response.headers["Set-Cookie"]
    assert '<html lang="ru">' in client.get("/ui/desk/sign-in").text


def test_uzbek_is_the_default(client, seeded):
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE", None)  # a kiosk browser that says nothing
    assert '<html lang="uz">' in client.get("/ui/kiosk/").text
    russian = client.get("/ui/kiosk/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in russian.text


def test_dates_are_written_in_the_readers_language(client, pinned):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    doctor = pinned["doctor_id"]
    uz = client.get(f"/ui/kiosk/book/{doctor}?lang=uz").text
    ru = client.get(f"/ui/kiosk/book/{doctor}?lang=ru").text
    months_uz = ("yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avgust",
                 "sentabr", "oktabr", "noyabr", "dekabr")
    assert any(m in uz for m in months_uz)
    assert re.search(r"(января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|"
                     r"ноября|декабря)", ru)
