"""`make demo`: a hub and two nodes (a polyclinic and a pharmacy) on SQLite, seeded, served on
loopback until Ctrl-C, with their URLs and sign-ins printed.

Everything is made fresh under var/demo: the certificate authority (national root, the TAS
region, one enrolment bundle per node), the hub's database with the trust list, and each
node's database enrolled from its bundle, exactly as regional IT would do it by hand with
dmed-provision, dmed-hub init and dmed-node init --bundle.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

from waitress.server import create_server

from central_hub import staff
from central_hub.app import create_app as create_hub
from central_hub.storage import open_storage
from central_hub.trust_store import TrustStore
from edge_node.background import BackgroundJobs
from edge_node.credentials import install_bundle, load_credentials
from edge_node.seed import seed_demo, seed_pharmacy
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app as create_node
from edge_node.web.serving import create_node_server
from provisioning.keystore import CaStore
from sync_protocol.trust import NodeKind

DEMO = Path("var/demo")
HOST = "127.0.0.1"
REGION = "TAS"
CLINIC = ("tas-pol-012", "TAS-POL-012")
PHARMACY = ("tas-apt-007", "TAS-APT-007")
# The demo hub's dashboard account (a demo on loopback; real accounts: dmed-hub create-staff).
DEMO_STAFF = ("central", "demo-central-2026")


def free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex((HOST, preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def provision() -> dict[str, Path]:
    ca = CaStore(DEMO / "ca")
    ca.init_root("DMED National Root (demo)")
    ca.add_region(REGION, "Toshkent shahri")
    bundles = {}
    for name, (node_id, facility), kind in (("clinic", CLINIC, NodeKind.CLINIC),
                                            ("pharmacy", PHARMACY, NodeKind.PHARMACY)):
        bundles[name] = DEMO / f"{name}-bundle"
        ca.add_node(REGION, node_id, facility, kind, out=bundles[name])
    (DEMO / "trust-list.json").write_text(ca.trust_list().to_json(indent=2), encoding="utf-8")
    return bundles


def enrol(name: str, bundle: Path, seed) -> tuple[NodeStore, dict]:
    data_dir = DEMO / name
    data_dir.mkdir()
    store = NodeStore(data_dir / "node.db")
    installed = install_bundle(bundle, data_dir)
    credentials = load_credentials(installed)
    store.initialise(credentials.identity.node_id)
    with store.transaction() as tx:
        store.set_state(tx.conn, "bundle_path", str(installed))
    confirm_clock(store, "init")
    return store, seed(store, code=credentials.identity.facility_code)


def serve_in_thread(app, port: int, *, node: bool = False):
    """The hub with waitress's defaults; a node as `dmed-node serve` serves it."""
    server = create_node_server(app, HOST, port) if node else \
        create_server(app, host=HOST, port=port, threads=8)
    threading.Thread(target=server.run, daemon=True, name=f"serve-{port}").start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    base = int(os.environ.get("DMED_DEMO_PORT", sys.argv[1] if len(sys.argv) > 1 else 8000))
    ports = {"hub": free_port(base), "clinic": free_port(base + 80),
             "pharmacy": free_port(base + 81)}

    bundles = provision()
    hub_url = f"sqlite:///{(DEMO / 'hub.db').resolve()}"
    storage = open_storage(hub_url)
    TrustStore(storage).import_list(load_credentials(bundles["clinic"]).trust_list,
                                    accept_roots=True)
    hub = create_hub({"DATABASE": hub_url}, storage=storage)
    staff.create_staff(storage, login=DEMO_STAFF[0], full_name="Demo Central Staff",
                       role="central", password=DEMO_STAFF[1])
    servers = [serve_in_thread(hub, ports["hub"])]

    jobs = []
    seeded = {}
    clinic_seed = functools.partial(seed_demo, pharmacist=False)
    for name, seed in (("clinic", clinic_seed), ("pharmacy", seed_pharmacy)):
        store, seeded[name] = enrol(name, bundles[name], seed)
        app = create_node({"DATABASE": str(store.path),
                           "HUB_URL": f"http://{HOST}:{ports['hub']}"}, store=store)
        agent = app.extensions["dmed_sync_agent"]
        agent.run_once()
        jobs.append(BackgroundJobs(store, app.config, agent))
        servers.append(serve_in_thread(app, ports[name], node=True))
    for job in jobs:
        job.start()

    clinic, pharmacy = seeded["clinic"], seeded["pharmacy"]
    lines = [
        "", "DMED Edge demo is running (Ctrl-C stops it):",
        f"  hub            http://{HOST}:{ports['hub']}/  (sync API, /api/v1/nodes, /healthz)",
        f"  clinic node    http://{HOST}:{ports['clinic']}/   {CLINIC[1]}",
        f"  pharmacy node  http://{HOST}:{ports['pharmacy']}/   {PHARMACY[1]}",
        f"  node API doc   http://{HOST}:{ports['clinic']}/api/v1/openapi.json",
        f"  hub dashboard  http://{HOST}:{ports['hub']}/dashboard   (central staff: "
        f"{DEMO_STAFF[0]} / {DEMO_STAFF[1]})",
        f"  fleet pages    http://{HOST}:{ports['hub']}/dashboard/fleet/   (regions, nodes, "
        "charts, conflicts in words)",
        f"  metrics        http://{HOST}:{ports['hub']}/metrics   "
        f"http://{HOST}:{ports['clinic']}/metrics   http://{HOST}:{ports['pharmacy']}/metrics",
        "                 (Prometheus: deploy/prometheus.yml, alerts: deploy/alerts.yml)",
        "", "Clinic sign-ins (username / PIN):",
        *(f"  {s['username']:<11} {s['pin']}   ({s['role']})" for s in clinic["sign_ins"]),
        "Pharmacy sign-ins (username / PIN):",
        *(f"  {s['username']:<11} {s['pin']}   ({s['role']})" for s in pharmacy["sign_ins"]),
        "", "Demo patients (PINFL / document):",
        *(f"  {p['pinfl']}  {p['document']}  {p['full_name']}" for p in clinic["patients"]),
        "", "SMS codes are written to this console. Data lives in var/demo.", "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - this is the demo's console
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for job in jobs:
            job.stop()
        for server in servers:
            server.close()


if __name__ == "__main__":
    main()
