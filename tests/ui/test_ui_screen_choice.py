"""The screen chooser offers only screens that fit the node and the role (issue 12, point 8),
and a refusal is put in words, never as a permission's code."""

from __future__ import annotations

import re

import pytest
from helpers.ui import staff_sign_in, text_of, translated  # noqa: F401

from edge_node.seed import seed_pharmacy
from edge_node.services.access import PERMISSIONS
from kiosk_ui import labels, screen_choice

pytestmark = pytest.mark.usefixtures("catalogues")

ALL = frozenset({"admin", "registrar", "doctor", "pharmacist"})


def tiles(client, lang: str = "en") -> list[str]:
    return re.findall(r'data-screen="(\w+)"', client.get(f"/ui/?lang={lang}").text)


@pytest.mark.parametrize(("kind", "role", "present", "expected"), [
    ("clinic", None, ALL - {"pharmacist"}, ["kiosk", "desk"]),
    ("clinic", None, ALL, ["kiosk", "desk", "counter"]),  # a stand-alone clinic that dispenses
    ("clinic", "admin", ALL, ["kiosk", "desk"]),
    ("clinic", "doctor", ALL, ["desk"]),
    ("clinic", "pharmacist", ALL, ["counter"]),
    ("pharmacy", None, frozenset({"admin", "pharmacist"}), ["counter"]),
    ("pharmacy", "pharmacist", frozenset({"admin", "pharmacist"}), ["counter"]),
    ("pharmacy", "admin", frozenset({"admin", "pharmacist"}), ["desk"]),
    (None, None, frozenset(), ["kiosk", "desk", "counter"]),  # not seeded: nothing to judge by
])
def test_offered_screens(kind, role, present, expected):
    assert [s.name for s in screen_choice.offered(kind, role, present)] == expected


def test_a_clinic_without_a_pharmacist_offers_no_counter(client, store, seeded):
    assert tiles(client) == ["kiosk", "desk", "counter"]
    with store.transaction() as tx:
        tx.conn.execute("UPDATE staff SET active = 0 WHERE role = 'pharmacist'")
    assert tiles(client) == ["kiosk", "desk"]
    staff_sign_in(client, "admin")
    assert tiles(client) == ["kiosk", "desk"]


def test_a_pharmacy_offers_the_counter_and_never_the_kiosk(client, store):
    seed_pharmacy(store)
    assert tiles(client) == ["counter"]
    staff_sign_in(client, "pharmacist")
    assert tiles(client) == ["counter"]
    for lang in ("uz", "ru"):
        assert translated(lang, "Pharmacy counter") in text_of(client.get(f"/ui/?lang={lang}")
                                                               .text)


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_a_refusal_names_the_action_in_words(client, seeded, lang):
    staff_sign_in(client, "admin")
    response = client.get(f"/ui/counter/?lang={lang}")
    assert response.status_code == 403
    page = text_of(response.text)
    assert "verify_prescription" not in page and "(admin)" not in page
    expected = translated(lang, "Your role (%(role)s) may not do this: %(permission)s",
                          role=translated(lang, "Administrator"),
                          permission=translated(lang, "check prescriptions at the counter"))
    assert expected in page


def test_every_permission_has_words():
    named = {p for permissions in PERMISSIONS.values() for p in permissions}
    assert named <= set(labels.PERMISSION_WORDS)


def test_the_kiosk_on_a_pharmacy_says_it_belongs_at_a_clinic(client, store):
    seed_pharmacy(store)
    page = client.get("/ui/kiosk/?lang=ru").text
    assert translated("ru", "This node is a pharmacy: the reception kiosk works at a"
                      " polyclinic.") in text_of(page)
    assert "/ui/kiosk/identify" not in page
