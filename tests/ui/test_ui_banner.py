"""The node banner's short-lived copy (kiosk_ui.banner): kept between pages, dropped after a
write through this node, read afresh after its period; the language bar and static links."""

from __future__ import annotations

import re

import pytest
from helpers.ui import kiosk_sign_in, post, translated

from edge_node.services import appointments
from kiosk_ui import banner

pytestmark = pytest.mark.usefixtures("catalogues")


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    frozen = FrozenClock()
    monkeypatch.setattr(banner, "monotonic", frozen)
    return frozen


@pytest.fixture
def offline(app):
    """A node that has a hub but has never reached it: every local change waits."""
    app.config["HUB_URL"] = "https://hub.invalid"
    app.config.pop("UI_STATUS_CACHE_SECONDS", None)  # the real period
    return app


def pending_shown(html: str) -> int:
    found = re.search(r'class="pending">[^<]*?(\d+)</span>', html)
    assert found, html
    return int(found.group(1))


def local_head(store) -> int:
    return store.one("SELECT MAX(seq) AS n FROM events WHERE origin = ?",
                     (store.node_id,))["n"]


def test_a_write_through_the_node_shows_in_the_next_pages_pending_count(
        offline, client, store, pinned, clock):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    assert pending_shown(client.get("/ui/kiosk/home").text) == local_head(store)
    booked = post(client, f"/ui/kiosk/book/{pinned['doctor_id']}",
                  {"starts_at": pinned["slot"], "confirm": "1"})
    assert booked.status_code == 302
    # The clock has not moved: only dropping the copy after the write can show the change.
    assert pending_shown(client.get("/ui/kiosk/home").text) == local_head(store)


def test_the_banner_is_kept_for_its_period_then_read_again(
        offline, client, store, pinned, clock, actor_for):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    before = pending_shown(client.get("/ui/kiosk/home").text)
    # A change the pages did not make (the sync agent, the CLI in another process).
    appointments.book(store, actor_for("registrar"), patient_id=pinned["patient"]["patient_id"],
                      practitioner_id=pinned["doctor_id"], starts_at=pinned["slot"],
                      channel="registry", now=pinned["now"])
    assert local_head(store) > before
    assert pending_shown(client.get("/ui/kiosk/home").text) == before  # the kept copy
    clock.now += banner.STATUS_CACHE_SECONDS / 2
    assert pending_shown(client.get("/ui/kiosk/home").text) == before
    clock.now += banner.STATUS_CACHE_SECONDS
    assert pending_shown(client.get("/ui/kiosk/home").text) == local_head(store)


def test_the_kept_banner_speaks_each_pages_language(offline, client, store, seeded, clock):
    english = client.get("/ui/kiosk/").text
    russian = client.get("/ui/kiosk/?lang=ru").text
    count = local_head(store)
    assert translated("en", "Changes waiting to sync: %(count)s", count=count) in english
    assert translated("ru", "Changes waiting to sync: %(count)s", count=count) in russian
    assert translated("ru", "Offline") != "Offline" and translated("ru", "Offline") in russian


def test_the_language_bar_keeps_the_page_and_its_query(client, seeded):
    html = client.get("/ui/kiosk/identify?lang=ru&x=1").text
    links = re.findall(r'<a href="([^"]+)" lang="(\w+)" data-i18n="no"([^>]*)>', html)
    assert [(url, code) for url, code, _ in links] == [
        ("/ui/kiosk/identify?x=1&amp;lang=uz", "uz"), ("/ui/kiosk/identify?x=1&amp;lang=ru", "ru"),
        ("/ui/kiosk/identify?x=1&amp;lang=en", "en")]
    assert [code for _, code, attrs in links if 'aria-current="true"' in attrs] == ["ru"]
    assert '<link rel="stylesheet" href="/ui/static/ui.css">' in html
    response = client.get("/ui/static/ui.css")
    assert response.status_code == 200
    response.close()
