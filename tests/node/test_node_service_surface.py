"""The node's service surface stays clean (issue 14, point 4): the screens and the JSON API
never touch a database connection or app.extensions, and the services they call take the
store and hand back values, never a sqlite3.Row."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import edge_node.services

ROOT = Path(__file__).resolve().parents[2]
VIEWS = sorted([*ROOT.glob("kiosk_ui/*.py"), *ROOT.glob("edge_node/web/*.py")])
# The one module that reaches app.extensions for a request (store, credentials, sync agent).
CONTEXT = ROOT / "edge_node" / "web" / "context.py"
# A view asks a service; SQL (query, one, execute, a transaction) and connections stay below.
DATABASE_CALLS = {"reader", "execute", "executemany", "query", "one", "transaction"}


def _database_uses(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr == "conn":
            found.append(("conn", node.lineno))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in DATABASE_CALLS:
            found.append((node.func.attr, node.lineno))
    return sorted(found)


def test_views_never_touch_a_connection():
    offenders = {str(p.relative_to(ROOT)): used for p in VIEWS if (used := _database_uses(p))}
    assert offenders == {}, "views that reach the database themselves (ask a service)"


def _extension_keys(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant)
            and node.value in ("dmed_store", "dmed_credentials", "dmed_sync_agent")]


def test_request_scoped_access_goes_through_the_context_module():
    offenders = {str(p.relative_to(ROOT)): keys for p in VIEWS
                 if p != CONTEXT and (keys := _extension_keys(p))}
    assert offenders == {}, "views that read app.extensions themselves (edge_node.web.context)"


def _public_service_functions():
    for info in pkgutil.iter_modules(edge_node.services.__path__):
        module = importlib.import_module(f"edge_node.services.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                yield f"{info.name}.{name}", function


SERVICE_FUNCTIONS = dict(_public_service_functions())


def test_there_are_service_functions_to_check():
    assert {"patients.get_patient", "prescribing.get_prescription",
            "dispensing.verdict_for"} <= set(SERVICE_FUNCTIONS)


def test_no_service_function_returns_a_row():
    # load_*: a record's row read inside another service's transaction (never for a view).
    returns = {name: str(inspect.signature(f).return_annotation)
               for name, f in SERVICE_FUNCTIONS.items() if ".load_" not in name}
    assert {n: r for n, r in returns.items() if "Row" in r} == {}, "return values (records.py)"


def test_getters_take_the_store():
    firsts = {name: next(iter(inspect.signature(f).parameters.values())).annotation
              for name, f in SERVICE_FUNCTIONS.items() if ".get_" in name}
    assert firsts and {n: a for n, a in firsts.items() if a != "NodeStore"} == {}


# -- a view that used to hold its own SQL: the sync problems, now node_status.sync_problems --

def _token(client, username: str, pin: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/sign-in", json={"username": username, "pin": pin})
    return {"Authorization": f"Bearer {answer.json['token']}"}


def test_sync_problems_list_refusals_and_apply_failures_for_the_admin(client, seeded, store):
    with store.transaction() as tx:
        tx.conn.execute("INSERT INTO sync_refusals (event_id, seq, type, code, reason,"
                        " refused_at) VALUES ('E2', 2, 'PatientRegistered', 'bad_event', 'x',"
                        " '2026-03-01T08:00:00Z'), ('E1', 1, 'AppointmentBooked',"
                        " 'not_permitted', 'y', '2026-03-01T08:00:01Z')")
        tx.conn.execute("INSERT INTO apply_failures (event_id, origin, type, reason, failed_at)"
                        " VALUES ('E9', 'node-b', 'VisitRecorded', 'unknown patient',"
                        " '2026-03-01T09:00:00Z')")
    answer = client.get("/api/v1/sync/problems", headers=_token(client, "admin", "9000"))
    assert answer.status_code == 200
    assert [r["event_id"] for r in answer.json["refused"]] == ["E1", "E2"]  # by seq
    assert answer.json["apply_failures"][0]["reason"] == "unknown patient"
    refused = client.get("/api/v1/sync/problems", headers=_token(client, "doctor", "2222"))
    assert refused.status_code == 403


def test_the_scans_see_the_screens():
    # the rules above would pass vacuously if the paths went wrong
    assert CONTEXT.exists() and len(VIEWS) > 10
