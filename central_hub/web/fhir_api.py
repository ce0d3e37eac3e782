"""The FHIR R4 endpoints at /fhir/r4/: read, search, metadata, SMART token, bulk $export.

Views are thin: authorise, call search / export, audit, answer. Everything the API answers
is JSON (application/fhir+json); every error is an OperationOutcome, except the token
endpoint's, which are OAuth 2.0 errors as SMART clients expect.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, request, send_file
from werkzeug.exceptions import HTTPException

from sync_protocol.errors import ProtocolError
from sync_protocol.timeutil import to_instant

from ..fhir.access import Access, access_for, audit, issue_token
from ..fhir.capability import capability_statement, smart_configuration
from ..fhir.errors import BadClientAssertion, BadSearch, FhirError, UnknownResource
from ..fhir.export import COMPLETED, FAILED, NDJSON, Exports, parse_since, parse_types
from ..fhir.search import check_id, now_instant, parse, read, run, source_of

log = logging.getLogger(__name__)

PREFIX = "/fhir/r4"
FHIR_JSON = "application/fhir+json"
EXTENSION = "dmed_fhir"
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
NOT_FHIR_TEXT = re.compile(r"[^\S \r\n\t]")  # the other whitespace: not in a FHIR string
RETRY_AFTER_SECONDS = 2  # a bulk export client polls its status this often

bp = Blueprint("fhir", __name__, url_prefix=PREFIX)


def init_app(app: Flask, hub: Any) -> None:
    """Register the blueprint; `hub` is the app's central_hub.web.context.Hub."""
    directory = Path(hub.config["FHIR_EXPORT_DIR"])
    app.extensions[EXTENSION] = Exports(hub.storage, directory, hub.clock)
    app.register_blueprint(bp)


def _hub() -> Any:
    return current_app.extensions["dmed_hub"]


def _exports() -> Exports:
    return current_app.extensions[EXTENSION]


def base_url() -> str:
    configured = _hub().config.get("FHIR_BASE_URL") or ""
    return configured.rstrip("/") or request.url_root.rstrip("/") + PREFIX


def fhir(body: Any, status: int = 200, **headers: str) -> Response:
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = FHIR_JSON
    response.headers.update(headers)
    return response


def printable(text: str) -> str:
    """FHIR strings allow no whitespace but space, tab and line breaks; a message that
    echoes a client's value must stay valid."""
    return NOT_FHIR_TEXT.sub("?", text) or "?"


def outcome(status: int, issue: str, code: str, message: str, field: str | None) -> Response:
    message, field = printable(message), printable(field) if field else None
    body = {"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": issue, "diagnostics": message,
        "details": {"coding": [{"system": "https://dmed.uz/fhir/CodeSystem/error",
                                "code": code}], "text": message},
        **({"expression": [field]} if field else {})}]}
    headers = {"WWW-Authenticate": 'Bearer realm="dmed-fhir"'} if status == 401 else {}
    return fhir(body, status, **headers)


@bp.errorhandler(ProtocolError)
def protocol_error(error: ProtocolError) -> Response:
    status = getattr(error, "http_status", 400)
    return outcome(status, getattr(error, "issue", "invalid"), error.code, error.text,
                   error.field)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    issue = "not-found" if error.code == 404 else "not-supported"
    return outcome(error.code or 400, issue, (error.name or "error").lower().replace(" ", "_"),
                   error.description or error.name, None)


@bp.errorhandler(Exception)
def unexpected(error: Exception) -> Response:
    log.error("unexpected error in the FHIR API", exc_info=error)
    return outcome(500, "exception", "internal", "Something went wrong at the hub", None)


def _access() -> Access:
    return access_for(_hub().storage, request.headers.get("Authorization"), _hub().now())


def _args() -> list[tuple[str, str]]:
    args = list(request.args.items(multi=True))
    for name, value in args:
        if name == "_format" and value not in JSON_FORMATS:
            raise FhirError("Only JSON is served (_format=json)", field="_format",
                            code="json_only")
    return [(n, v) for n, v in args if n != "_format"]


def _audit(access: Access, interaction: str, resource_type: str, count: int) -> None:
    with _hub().storage.transaction(exclusive=False) as tx:
        audit(tx, access, interaction, resource_type, count, request.query_string.decode(
            "utf-8", "replace"), _hub().now())


@bp.get("/metadata")
def metadata() -> Response:
    return fhir(capability_statement(base_url(), to_instant(_hub().now())))


@bp.get("/.well-known/smart-configuration")
def smart() -> Response:
    return fhir(smart_configuration(base_url()))


@bp.post("/auth/token")
def token() -> Response:
    try:
        answer = issue_token(_hub().storage, request.form.to_dict(),
                             f"{base_url()}/auth/token", _hub().now())
    except BadClientAssertion as e:
        status = 401 if e.code == "invalid_client" else 400
        return current_app.json.response({"error": e.code, "error_description": e.text}), status
    response = current_app.json.response(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<resource_type>")
def search(resource_type: str) -> Response:
    source_of(resource_type)
    access = _access()
    access.check(resource_type)
    now = now_instant()
    query = parse(resource_type, _args(), now)
    with _hub().storage.reader() as tx:
        resources, more = run(tx, query, access, now)
    _audit(access, "search-type", resource_type, len(resources))
    base = base_url()
    link = [{"relation": "self", "url": _page_url(base, resource_type, query, query.offset)}]
    if more:
        link.append({"relation": "next", "url": _page_url(base, resource_type, query,
                                                          query.offset + query.count)})
    if query.offset:
        link.append({"relation": "previous", "url": _page_url(
            base, resource_type, query, max(0, query.offset - query.count))})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": link}
    if resources:  # FHIR has no empty arrays: no match, no entry
        bundle["entry"] = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                            "search": {"mode": "match"}} for r in resources]
    return fhir(bundle)


def _page_url(base: str, resource_type: str, query: Any, offset: int) -> str:
    params = [*query.canonical, ("_count", str(query.count)), ("_offset", str(offset))]
    return f"{base}/{resource_type}?{urlencode(params)}"


@bp.get("/<resource_type>/<resource_id>")
def read_one(resource_type: str, resource_id: str) -> Response:
    source_of(resource_type)
    access = _access()
    access.check(resource_type)
    check_id(resource_id, "id")
    now = now_instant()
    with _hub().storage.reader() as tx:
        found = read(tx, resource_type, resource_id, access, now)
    _audit(access, "read", resource_type, 1)
    return fhir(found)


@bp.route("/$export", methods=["GET", "POST"])
def export_kick_off() -> Response:
    access = _access()
    if request.headers.get("Prefer", "").replace(" ", "") != "respond-async":
        raise FhirError("Bulk export is asynchronous: send Prefer: respond-async",
                        field="Prefer", code="respond_async")
    args = dict(_args())
    unknown = sorted(set(args) - {"_type", "_since", "_outputFormat"})
    if unknown:
        raise BadSearch("%(field)s is not a parameter of $export here (known: _type, _since, "
                        "_outputFormat)", field=unknown[0][:40], code="unknown_parameter")
    if args.get("_outputFormat", NDJSON) not in (NDJSON, "application/ndjson", "ndjson"):
        raise BadSearch("_outputFormat: only application/fhir+ndjson", field="_outputFormat",
                        code="bad_format")
    types = parse_types(args.get("_type"), access)
    since = parse_since(args.get("_since"))
    job_id = _exports().start(access, types, since, request.url)
    return fhir(None, 202, **{"Content-Location": f"{base_url()}/$export-status/{job_id}"})


@bp.route("/$export-status/<job_id>", methods=["GET", "DELETE"])
def export_status(job_id: str) -> Response:
    access = _access()
    check_id(job_id, "job")
    if request.method == "DELETE":
        _exports().delete(job_id, access)
        return fhir(None, 202)
    job = _exports().job(job_id, access)
    if job["status"] == FAILED:
        return outcome(500, "exception", "export_failed", f"Export failed: {job['error']}",
                       None)
    if job["status"] != COMPLETED:
        return fhir(None, 202, **{"X-Progress": "running",
                                  "Retry-After": str(RETRY_AFTER_SECONDS)})
    base = base_url()
    output = [{"type": o["type"], "count": o["count"],
               "url": f"{base}/$export-file/{job_id}/{o['type']}.ndjson"}
              for o in json.loads(job["output"])]
    return fhir({"transactionTime": job["created_at"], "request": job["request_url"],
                 "requiresAccessToken": True, "output": output, "error": []})


@bp.get("/$export-file/<job_id>/<resource_type>.ndjson")
def export_file(job_id: str, resource_type: str) -> Response:
    access = _access()
    check_id(job_id, "job")
    source_of(resource_type)
    path = _exports().file(job_id, resource_type, access)
    _audit(access, "export-download", resource_type, 0)
    return send_file(path, mimetype=NDJSON, max_age=0)


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def elsewhere(rest: str) -> Response:
    raise UnknownResource("Nothing at /fhir/r4/%(path)s: this server is read-only (read, "
                          "search, $export)", field=None, code="not_found", path=rest[:100])
