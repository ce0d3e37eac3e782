"""Issue 11.9 (kept behaviour): a full disk gives a clear 500 on writes, reads go on, and
writes resume once space is freed. The database's page limit stands in for the disk; a
scratch table fills it, then registrations use up the room left inside existing pages."""

from __future__ import annotations

import sqlite3
from datetime import date

from test_api_patients import body

from sync_protocol.identifiers import make_pinfl

MAX_TRIES = 200  # far more registrations than the free room inside a few pages can hold


def fill_the_disk(writer) -> None:
    pages = writer.execute("PRAGMA page_count").fetchone()[0]
    writer.execute(f"PRAGMA max_page_count = {pages + 64}")
    writer.execute("CREATE TABLE scratch_filler (b BLOB)")
    try:
        while True:
            writer.execute("INSERT INTO scratch_filler VALUES (zeroblob(1000))")
    except sqlite3.OperationalError as e:
        assert "full" in str(e)


def patient(seeded, n: int) -> dict:
    return body(seeded, pinfl=make_pinfl(date(1990, 6, 15), "female", "261", f"{n + 1:03d}"),
                phone=f"+99890{n:07d}")


def test_a_full_disk_refuses_writes_clearly_and_recovers(client, auth, seeded, store):
    headers = auth("registrar")
    writer = store._writer  # the one connection that writes (the disk as the store sees it)
    fill_the_disk(writer)
    for n in range(MAX_TRIES):
        events = store.one("SELECT COUNT(*) AS n FROM events")["n"]
        full = client.post("/api/v1/patients", json=patient(seeded, n), headers=headers)
        if full.status_code != 201:
            break
    assert full.status_code == 500, full.json
    assert full.json["error"]["code"] == "internal"
    assert "not saved" in full.json["error"]["message"]
    assert store.one("SELECT COUNT(*) AS n FROM events")["n"] == events  # nothing half-done
    listed = client.get(f"/api/v1/patients?pinfl={seeded['patients'][0]['pinfl']}",
                        headers=headers)
    assert listed.status_code == 200  # reads go on
    writer.execute("DELETE FROM scratch_filler")  # space freed
    again = client.post("/api/v1/patients", json=patient(seeded, n), headers=headers)
    assert again.status_code == 201, again.json
    assert store.one("SELECT COUNT(*) AS n FROM events")["n"] == events + 1
