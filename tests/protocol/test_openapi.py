"""The OpenAPI document describes every API route and only valid schemas."""

import re

from jsonschema import Draft202012Validator


def test_every_api_route_is_in_the_document(app, client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, (path, method)


def test_all_schemas_in_the_document_are_valid(client):
    document = client.get("/api/v1/openapi.json").json
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for ops in document["paths"].values():
        for op in ops.values():
            body = op.get("requestBody")
            if body:
                Draft202012Validator.check_schema(body["content"]["application/json"]["schema"])
    assert "AppointmentBooked.v1" in document["components"]["schemas"]


def test_malformed_json_gets_a_json_error(client, auth):
    response = client.post("/api/v1/appointments", data="{not json",
                           content_type="application/json", headers=auth("registrar"))
    # Issue 11.3: a body that does not parse is a 400 from the one bounded JSON parser.
    assert response.status_code == 400
    error = response.json["error"]
    assert (error["code"], error["field"]) == ("bad_json", "body")
    assert error["message"].startswith("The JSON document is not valid: ")


def test_unknown_route_gets_a_json_error(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert set(response.json["error"]) == {"code", "message", "field"}
