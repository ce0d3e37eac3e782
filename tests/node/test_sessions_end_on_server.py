"""Issue 11.10: Finish, the idle rule and a staff sign-out end the session on the server; a
cookie captured before (and replayed after) gets the start page, never the patient's data."""

from __future__ import annotations

import pytest
from helpers.ui import kiosk_sign_in, post, staff_sign_in

pytestmark = pytest.mark.usefixtures("catalogues")


def captured(client) -> str:
    return client.get_cookie("session").value


def replay(client, cookie: str) -> None:
    client.set_cookie("session", cookie)


@pytest.fixture
def me(client, pinned):  # noqa: F811
    kiosk_sign_in(client, pinned["patient"])
    return pinned["patient"]


def test_a_cookie_replayed_after_finish_gets_the_start_page(client, me):
    home = client.get("/ui/kiosk/home")
    assert home.status_code == 200 and me["full_name"] in home.text
    cookie = captured(client)
    assert post(client, "/ui/kiosk/end").status_code == 302
    replay(client, cookie)
    response = client.get("/ui/kiosk/home")
    assert response.status_code == 302
    assert response.headers["Location"].split("?")[0].endswith("/ui/kiosk/")
    start = client.get(response.headers["Location"])
    assert me["full_name"] not in start.text


def test_a_cookie_replayed_after_the_idle_limit_gets_the_start_page(client, store, me):
    cookie = captured(client)
    idle = client.application.config["KIOSK_IDLE_SECONDS"]
    with store.transaction() as tx:  # the server last saw this session longer ago than that
        tx.conn.execute("UPDATE kiosk_sessions SET last_seen = last_seen - ?", (idle + 5,))
    replay(client, cookie)
    response = client.get("/ui/kiosk/home")
    assert response.status_code == 302 and "ended=1" in response.headers["Location"]
    row = store.one("SELECT ended_at FROM kiosk_sessions")
    assert row["ended_at"] is not None  # ended for good, not only for this request


def test_each_identification_is_its_own_server_session(client, me, store, pinned):  # noqa: F811
    cookie = captured(client)
    post(client, "/ui/kiosk/end")
    kiosk_sign_in(client, pinned["patient"])  # the next patient (here: the same one again)
    assert client.get("/ui/kiosk/home").status_code == 200
    replay(client, cookie)  # the first session's copy stays dead
    assert client.get("/ui/kiosk/home").status_code == 302
    rows = store.query("SELECT ended_at FROM kiosk_sessions ORDER BY rowid")
    assert [r["ended_at"] is not None for r in rows] == [True, False]


def test_a_staff_cookie_replayed_after_sign_out_gets_the_sign_in_page(client, seeded):
    staff_sign_in(client, "registrar")
    assert client.get("/ui/desk/").status_code == 200
    cookie = captured(client)
    post(client, "/ui/desk/sign-out")
    replay(client, cookie)
    response = client.get("/ui/desk/")
    assert response.status_code == 302 and "/ui/desk/sign-in" in response.headers["Location"]


def test_a_new_identification_ends_the_session_before_it(client, me, store, pinned):  # noqa: F811
    cookie = captured(client)
    kiosk_sign_in(client, pinned["patient"])  # no Finish: the next identification at once
    replay(client, cookie)
    assert client.get("/ui/kiosk/home").status_code == 302
    rows = store.query("SELECT ended_at FROM kiosk_sessions ORDER BY rowid")
    assert [r["ended_at"] is not None for r in rows] == [True, False]


def test_old_kiosk_sessions_are_pruned(store):
    from datetime import timedelta

    from edge_node.services import kiosk_sessions
    from sync_protocol.timeutil import utc_now
    long_ago = utc_now() - timedelta(days=2)
    abandoned = kiosk_sessions.start(store, "p-abandoned", now=long_ago)
    finished = kiosk_sessions.start(store, "p-finished", now=long_ago)
    kiosk_sessions.end(store, finished, now=long_ago)
    kept = kiosk_sessions.start(store, "p-now")
    ids = {r["session_id"] for r in store.query("SELECT session_id FROM kiosk_sessions")}
    assert ids == {kept} and abandoned not in ids
