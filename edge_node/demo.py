"""`make demo`: a fresh, seeded demo node on SQLite, served until Ctrl-C, with its sign-ins."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from waitress import serve

from .background import BackgroundJobs
from .seed import seed_demo
from .store import NodeStore
from .web import create_app

DEMO_DIR = Path("var/demo")
HOST, PORT = "127.0.0.1", 8080


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    store = NodeStore(DEMO_DIR / "clinic.db")
    store.initialise("demo-clinic")
    seeded = seed_demo(store)
    app = create_app({"DATABASE": str(DEMO_DIR / "clinic.db")}, store=store)
    jobs = BackgroundJobs(store, app.config, app.extensions.get("dmed_sync_agent"))
    jobs.start()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else PORT
    lines = [
        "", "DMED Edge demo is running:",
        f"  clinic node   http://{HOST}:{port}/",
        f"  API document  http://{HOST}:{port}/api/v1/openapi.json",
        "", "Sign-ins (username / PIN):",
        *(f"  {s['username']:<11} {s['pin']}   ({s['role']})" for s in seeded["sign_ins"]),
        "", "Demo patients (PINFL / document):",
        *(f"  {p['pinfl']}  {p['document']}  {p['full_name']}" for p in seeded["patients"]),
        "", "SMS codes are written to this console. Stop with Ctrl-C.", "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - this is the demo's console
    try:
        serve(app, host=HOST, port=port, threads=8)
    finally:
        jobs.stop()


if __name__ == "__main__":
    main()
