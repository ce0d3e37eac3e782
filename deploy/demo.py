"""`make demo`: a hub, a polyclinic and two pharmacies on SQLite, seeded with a working day,
served on loopback until Ctrl-C, with their URLs and sign-ins printed.

Everything is made fresh under var/demo: the certificate authority (national root, the TAS
region, one enrolment bundle per node), the hub's database with the trust list, and each
node's database enrolled from its bundle, exactly as regional IT would do it by hand with
dmed-provision, dmed-hub init and dmed-node init --bundle. Then the day (demo_story.py): a
queue at the clinic, an e-prescription, a paper pad, a call-centre request.

The hub runs as a process of its own, so the outage story can be tried by hand:

    python deploy/demo.py hub-stop     # make demo-hub-stop: the nodes work on, offline
    python deploy/demo.py hub-start    # make demo-hub-start: they are back within a minute
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import demo_story
import requests

from central_hub import staff
from central_hub.composition import open_storage
from central_hub.trust_store import TrustStore
from edge_node.background import BackgroundJobs
from edge_node.credentials import install_bundle, load_credentials
from edge_node.seed import seed_demo, seed_pharmacy
from edge_node.services import facilities
from edge_node.services.clock import confirm_clock
from edge_node.store import NodeStore
from edge_node.web import create_app as create_node
from edge_node.web.context import CREDENTIALS_KEY, SYNC_AGENT_KEY
from edge_node.web.serving import create_node_server
from provisioning.keystore import CaStore
from sync_protocol.certificates import NodeKind
from sync_protocol.identifiers import format_pad_serial

log = logging.getLogger("demo")

DEMO = Path("var/demo")
HOST = "127.0.0.1"
REGION = "TAS"
CLINIC = ("tas-pol-012", "TAS-POL-012")
# Two pharmacies of the district, with their own names and addresses (name, address).
PHARMACIES = {
    "pharmacy": (("tas-apt-007", "TAS-APT-007"), "7-son dorixona",
                 "Toshkent sh., Chilonzor tumani, Qatortol ko'ch. 3"),
    "pharmacy2": (("tas-apt-015", "TAS-APT-015"), "Shifobaxsh dorixonasi",
                  "Toshkent sh., Yunusobod tumani, Amir Temur shoh ko'ch. 108"),
}
PORT_OFFSETS = {"hub": 0, "clinic": 80, "pharmacy": 81, "pharmacy2": 82}
# The demo hub's dashboard account (a demo on loopback; real accounts: dmed-hub create-staff).
DEMO_STAFF = ("central", "demo-central-2026")
HUB_STATE = "hub.json"  # how to start the hub again, and its process id while it runs
HUB_START_SECONDS = 30  # a hub that does not answer /healthz by then has failed to start
HUB_STOP_SECONDS = 10  # then it is killed
_children: dict[int, subprocess.Popen] = {}  # hubs this process started, to reap them


def free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex((HOST, preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def provision(root: Path) -> dict[str, Path]:
    ca = CaStore(root / "ca")
    ca.init_root("DMED National Root (demo)")
    ca.add_region(REGION, "Toshkent shahri")
    nodes = [("clinic", CLINIC, NodeKind.CLINIC)] + [
        (name, ids, NodeKind.PHARMACY) for name, (ids, _n, _a) in PHARMACIES.items()]
    bundles = {}
    for name, (node_id, facility), kind in nodes:
        bundles[name] = root / f"{name}-bundle"
        ca.add_node(REGION, node_id, facility, kind, out=bundles[name])
    (root / "trust-list.json").write_text(ca.trust_list().to_json(indent=2), encoding="utf-8")
    return bundles


def enrol(root: Path, name: str, bundle: Path, seed) -> tuple[NodeStore, dict]:
    data_dir = root / name
    data_dir.mkdir()
    store = NodeStore(data_dir / "node.db")
    installed = install_bundle(bundle, data_dir)
    credentials = load_credentials(installed)
    store.initialise(credentials.identity.node_id)
    with store.transaction() as tx:
        store.set_state(tx.conn, "bundle_path", str(installed))
    confirm_clock(store, "init")
    return store, seed(store, code=credentials.identity.facility_code)


# -- the hub, a process of its own ------------------------------------------------------------

def init_hub(root: Path, trust_from: Path, port: int) -> str:
    """The hub's database with the trust list and the dashboard account; returns its URL."""
    database = f"sqlite:///{(root / 'hub.db').resolve()}"
    storage = open_storage(database)
    try:
        TrustStore(storage).import_list(load_credentials(trust_from).trust_list,
                                        accept_roots=True)
        staff.create_staff(storage, login=DEMO_STAFF[0], full_name="Demo Central Staff",
                           role="central", password=DEMO_STAFF[1])
    finally:
        storage.close()
    (root / HUB_STATE).write_text(json.dumps({"database": database, "port": port}))
    return f"http://{HOST}:{port}"


def hub_start(root: Path = DEMO) -> int:
    """Start the hub (`dmed-hub serve`) in the background; its output goes to hub.log."""
    state = json.loads((root / HUB_STATE).read_text())
    if state.get("pid") and _alive(state["pid"]):
        log.info("the hub already runs (process %s)", state["pid"])
        return state["pid"]
    command = [sys.executable, "-m", "central_hub.cli", "serve", "--db", state["database"],
               "--host", HOST, "--port", str(state["port"]), "--threads", "8"]
    with (root / "hub.log").open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONPATH": _python_path()})
    _children[process.pid] = process
    (root / HUB_STATE).write_text(json.dumps({**state, "pid": process.pid}))
    url = f"http://{HOST}:{state['port']}/healthz"
    deadline = time.monotonic() + HUB_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the hub stopped at once; see {root / 'hub.log'}")
        try:
            if requests.get(url, timeout=2).ok:
                log.info("hub started (process %s) on port %s", process.pid, state["port"])
                return process.pid
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"the hub did not answer in {HUB_START_SECONDS} s; see {root / 'hub.log'}")


def hub_stop(root: Path = DEMO) -> bool:
    """Stop the hub process; the nodes go on working offline. False if it was not running."""
    path = root / HUB_STATE
    state = json.loads(path.read_text())
    pid = state.pop("pid", None)
    path.write_text(json.dumps(state))
    if not pid or not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + HUB_STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait(HUB_STOP_SECONDS)
    log.info("hub stopped (process %s)", pid)
    return True


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _python_path() -> str:
    here = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


# -- the whole demo ---------------------------------------------------------------------------

def build(root: Path, base_port: int) -> dict:
    """Provision, start the hub, enrol and seed the nodes, play the day; nothing is served
    yet. Returns the nodes (store, app, agent), the ports and what was seeded."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    ports = {name: free_port(base_port + offset) for name, offset in PORT_OFFSETS.items()}
    bundles = provision(root)
    hub_url = init_hub(root, bundles["clinic"], ports["hub"])
    hub_start(root)
    try:
        return _seed_and_play(root, bundles, hub_url, ports)
    except BaseException:
        hub_stop(root)  # never leave a hub process behind a failed build
        raise


def _seed_and_play(root: Path, bundles: dict[str, Path], hub_url: str,
                   ports: dict[str, int]) -> dict:
    seeds = {"clinic": functools.partial(seed_demo, pharmacist=False)}
    for name, (_ids, title, address) in PHARMACIES.items():
        seeds[name] = functools.partial(seed_pharmacy, name=title, address=address)
    nodes, seeded = {}, {}
    for name, seed in seeds.items():
        store, seeded[name] = enrol(root, name, bundles[name], seed)
        app = create_node({"DATABASE": str(store.path), "HUB_URL": hub_url}, store=store)
        nodes[name] = {"store": store, "app": app, "agent": app.extensions[SYNC_AGENT_KEY]}
        nodes[name]["agent"].run_once()
    clinic = nodes["clinic"]
    demo_patients = seeded["clinic"]["patients"]
    story = {"queue": demo_story.todays_queue(clinic["store"], demo_patients[:4]),
             "prescription": demo_story.prescribe(
                 clinic["store"], clinic["app"].extensions[CREDENTIALS_KEY],
                 demo_patients[0])}
    clinic["agent"].run_once()  # the hub learns the patients before the call centre asks
    story["pad"] = demo_story.allocate_pad(hub_url, seeded["clinic"]["facility_id"])
    story["request"] = demo_story.call_centre_request(hub_url, demo_patients[2])
    for node in nodes.values():  # the pad and the request reach the clinic, the rx the pharmacies
        node["agent"].run_once()
    clinic_name = facilities.get_facility(clinic["store"],
                                          seeded["clinic"]["facility_id"])["name"]
    return {"nodes": nodes, "ports": ports, "seeded": seeded, "story": story,
            "hub_url": hub_url, "clinic": clinic_name}


def console_text(demo: dict) -> str:
    ports, seeded, story = demo["ports"], demo["seeded"], demo["story"]
    clinic = seeded["clinic"]
    checked_in = [q for q in story["queue"]["queue"] if q["queue_number"]]
    lines = [
        "", "DMED Edge demo is running (Ctrl-C stops it):",
        f"  hub            http://{HOST}:{ports['hub']}/  (sync API, /api/v1/nodes, /healthz)",
        f"  hub dashboard  http://{HOST}:{ports['hub']}/dashboard   (central staff: "
        f"{DEMO_STAFF[0]} / {DEMO_STAFF[1]})",
        f"  fleet pages    http://{HOST}:{ports['hub']}/dashboard/fleet/   (regions, nodes, "
        "charts, conflicts in words)",
        f"  metrics        http://{HOST}:{ports['hub']}/metrics   "
        f"http://{HOST}:{ports['clinic']}/metrics   http://{HOST}:{ports['pharmacy']}/metrics   "
        f"http://{HOST}:{ports['pharmacy2']}/metrics",
        "                 (Prometheus: deploy/prometheus.yml, alerts: deploy/alerts.yml)",
        f"  clinic         http://{HOST}:{ports['clinic']}/   {CLINIC[1]}  {demo['clinic']}",
        *(f"  {name:<14} http://{HOST}:{ports[name]}/   {ids[1]}  {title}, {address}"
          for name, (ids, title, address) in PHARMACIES.items()),
        "", "Today at the clinic:",
        f"  {len(checked_in)} patients checked in (Today's queue), "
        f"{len(story['queue']['queue']) - len(checked_in)} booked, not yet here",
        f"  e-prescription {story['prescription']['number']} for "
        f"{clinic['patients'][0]['full_name']} (show its QR at the kiosk, dispense it at a "
        "pharmacy)",
        f"  paper pad {format_pad_serial(story['pad']['series'], story['pad']['first_serial'])}"
        f" to {format_pad_serial(story['pad']['series'], story['pad']['last_serial'])}"
        " for outages (Paper prescription, as the doctor)",
        "  one call-centre request waiting (Call-centre requests, as the doctor)",
        "", "Clinic sign-ins (username / PIN):",
        *(f"  {s['username']:<11} {s['pin']}   ({s['role']})" for s in clinic["sign_ins"]),
        "Pharmacy sign-ins, both pharmacies (username / PIN):",
        *(f"  {s['username']:<11} {s['pin']}   ({s['role']})"
          for s in seeded["pharmacy"]["sign_ins"]),
        "", "Demo patients (PINFL / document):",
        *(f"  {p['pinfl']}  {p['document']}  {p['full_name']}" for p in clinic["patients"]),
        "", "The outage, by hand (in another terminal):",
        "  make demo-hub-stop    the banners say offline within 30 s; work goes on",
        "  make demo-hub-start   every node is back online within a minute",
        "", "SMS codes are written to this console. Data lives in var/demo.", "",
    ]
    return "\n".join(lines)


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # `kill` ends the demo as Ctrl-C does: the hub process too


def run(base_port: int) -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    demo = build(DEMO, base_port)
    jobs, servers = [], []
    for name, node in demo["nodes"].items():
        jobs.append(BackgroundJobs(node["store"], node["app"].config, node["agent"]))
        server = create_node_server(node["app"], HOST, demo["ports"][name])
        threading.Thread(target=server.run, daemon=True, name=f"serve-{name}").start()
        servers.append(server)
    for job in jobs:
        job.start()
    print(console_text(demo), flush=True)  # noqa: T201 - this is the demo's console
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for job in jobs:
            job.stop()
        for server in servers:
            server.close()
        hub_stop(DEMO)


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = argv[0] if argv and not argv[0].isdigit() else "run"
    if command == "hub-stop":
        print("hub stopped" if hub_stop() else "the hub was not running")  # noqa: T201
    elif command == "hub-start":
        hub_start()
        print("hub started")  # noqa: T201
    elif command == "run":
        run(int(os.environ.get("DMED_DEMO_PORT", argv[0] if argv else 8000)))
    else:
        raise SystemExit("usage: demo.py [PORT] | hub-stop | hub-start")


if __name__ == "__main__":
    main(sys.argv[1:])
