"""Issue 11.7: the API does what its OpenAPI document says, on the node and on the hub.

Schemathesis draws EXAMPLES schema-valid requests for every operation of each document
(fixed seed, derandomized: the same requests every run) and sends them authenticated: the
node's through its WSGI app with a staff token, the hub's over loopback HTTP, sync calls
signed by a node's key. Every answer must be a documented status with a documented body and
content type, never a server error; and a request the document calls valid is answered 2xx,
or 401/403/404/409, or with a refusal status the operation itself documents for content that
breaks a rule JSON Schema cannot state (a PINFL's check digit, a free slot, a known id: 422 on
the node, 400 on the hub). Query values are declared as the views really validate them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import requests
import schemathesis
from helpers.hub_app import hub_app_for
from helpers.servers import ServerThread
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from edge_node.seed import DEMO_PIN
from sync_protocol.request_signing import sign_request

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# A valid request may be answered "not signed in / not yours / not found / conflicting".
ACCEPTING = {401, 403, 404, 409}
# Routes that log out the token the run uses; exercised last, once.
LAST = {"POST /api/v1/auth/sign-out"}


def run_contract(schema, call) -> list[str]:
    """Every operation, EXAMPLES cases each; the failures as text (empty: all good)."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.label in LAST)
    for operation in operations:
        contract_test(operation, call, failures)()
    return failures


def contract_test(operation, call, failures: list[str]):
    declared = operation.definition.raw.get("responses", {})

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        response = call(case)
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as e:  # noqa: BLE001 - schemathesis raises exception groups
            failures.append(f"{operation.label}: {str(e).splitlines()[:4]}")
            return
        status = response.status_code
        if 200 <= status < 300 or status in ACCEPTING:
            return
        if str(status) in declared:
            return  # refused for its content, by a rule the operation documents
        failures.append(f"{operation.label}: valid request refused with {status}: "
                        f"{response.text[:200]} ({case.path_parameters}, {case.query})")

    return check


# -- the node ---------------------------------------------------------------------------------

# Who calls each group of operations, so the requests reach past the role check.
ROLE_OF_PATH = (("/api/v1/pharmacy", "pharmacist"), ("/api/v1/prescriptions", "doctor"),
                ("/api/v1/visits", "doctor"), ("/api/v1/lab-results", "doctor"),
                ("/api/v1/remote-requests", "doctor"), ("/api/v1/patients", "doctor"),
                ("/api/v1/appointments", "registrar"), ("/api/v1/dispenses", "pharmacist"))


def test_the_node_answers_as_its_openapi_document_says(app, seeded):
    client = app.test_client()
    tokens = {role: client.post("/api/v1/auth/sign-in", json={
        "username": role, "pin": DEMO_PIN[role]}).json["token"]
        for role in ("admin", "doctor", "registrar", "pharmacist")}

    def call(case):
        role = next((r for prefix, r in ROLE_OF_PATH if case.path.startswith(prefix)), "admin")
        return case.call(headers={"Authorization": f"Bearer {tokens[role]}"})

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = run_contract(schema, call)
    assert failures == [], "\n".join(sorted(set(f[:300] for f in failures)))


# -- the hub ----------------------------------------------------------------------------------

class NodeSignature(requests.auth.AuthBase):
    """Signs each sync request as the node does (over the exact bytes sent)."""

    def __init__(self, cred) -> None:
        self.cred = cred

    def __call__(self, prepared):
        target = prepared.path_url
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if target.startswith("/sync/"):
            prepared.headers.update(sign_request(
                prepared.method, target, body, self.cred.key, self.cred.cert,
                self.cred.identity.node_id, datetime.now(UTC)))
        return prepared


TOKEN = "contract-test-token"


def test_the_hub_answers_as_its_openapi_document_says(storage, world):
    app = hub_app_for(storage, world, API_TOKEN=TOKEN)
    server = ServerThread(app)
    try:
        session = requests.Session()
        session.auth = NodeSignature(world.pki.clinic)
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        # Plain bodies: schemathesis reads them as sent (gzip is tested with the sync)
        session.headers["Accept-Encoding"] = "identity"
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
        failures = run_contract(schema, lambda case: case.call(base_url=server.url,
                                                               session=session, timeout=10))
    finally:
        server.close()
    assert failures == [], "\n".join(sorted(set(f[:300] for f in failures)))


@pytest.mark.parametrize("side", ["node", "hub"])
def test_a_wrong_method_is_answered_405_with_allow(side, app, storage, world):
    if side == "hub":
        from central_hub.web.app import create_app
        app = create_app({"TESTING": True}, storage=storage)
        path, allowed = "/api/v1/nodes", {"GET", "HEAD", "OPTIONS"}
    else:
        path, allowed = "/api/v1/patients", {"GET", "HEAD", "OPTIONS", "POST"}
    response = app.test_client().delete(path)
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
    assert response.json["error"]["code"] == "method_not_allowed"
    assert response.content_type.startswith("application/json")


def test_every_hub_api_route_is_in_its_document(storage):
    from central_hub.web.app import create_app

    app = create_app({"TESTING": True}, storage=storage)
    document = app.test_client().get("/api/v1/openapi.json").json
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1/", "/sync/v1/", "/healthz")):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, (path, method)


def test_query_values_are_declared_as_the_node_validates_them(app, client, auth, seeded):
    """The issue's cases: lang= was refused (400) and day=<junk> (422) while the document
    allowed any string. Now an empty lang means Uzbek, and day is declared a date."""
    response = client.get("/api/v1/catalogue?q=amoks&lang=", headers=auth("doctor"))
    assert response.status_code == 200 and response.json["drugs"]
    document = client.get("/api/v1/openapi.json").json
    slots = document["paths"]["/api/v1/practitioners/{practitioner_id}/slots"]["get"]
    day = next(p for p in slots["parameters"] if p["name"] == "day")
    assert day["schema"] == {"type": "string", "format": "date"}
    book = document["paths"]["/api/v1/appointments"]["post"]["responses"]
    assert "201" in book and "200" not in book and "422" in book
