"""API: remote prescription requests from the 1003 call centre (the doctor decides), and the
pharmacy's look-up of a remote prescription by the patient's document and pickup code."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from ..services import remote_requests
from .api_rx import ITEM, credentials
from .endpoint import DOCUMENT_QUERY, IDENTITY_REFUSED, PINFL_QUERY, STR, endpoint, obj, store

bp = Blueprint("remote", __name__, url_prefix="/api/v1")


@endpoint(bp, "GET", "/remote-requests", summary="Call-centre requests for this facility",
          query={"status": ("requested (default) | approved | declined | all",
                            {"enum": [*remote_requests.STATUSES, "all"]})})
def list_requests():
    status = request.args.get("status", remote_requests.REQUESTED)
    return jsonify({"requests": remote_requests.list_requests(
        store(), g.actor, None if status == "all" else status)})


@endpoint(bp, "GET", "/remote-requests/<request_id>", summary="One call-centre request")
def get_request(request_id):
    g.actor.require("prescribe")
    return jsonify(dict(remote_requests.get_request(store(), request_id)))


@endpoint(bp, "POST", "/remote-requests/<request_id>/approve", status=201,
          summary="Approve: write and sign the e-prescription; the patient gets an SMS",
          body=obj({"items": {"type": "array", "items": ITEM}},
                   {"validity_days": {"type": "integer"}, "note": STR}))
def approve(request_id, data):
    result = remote_requests.approve(store(), g.actor, credentials(), request_id, **data)
    return jsonify(result), 201


@endpoint(bp, "POST", "/remote-requests/<request_id>/decline",
          summary="Decline, saying why; the patient gets an SMS", body=obj({"note": STR}))
def decline(request_id, data):
    return jsonify(remote_requests.decline(store(), g.actor, request_id, note=data["note"]))


@endpoint(bp, "GET", "/pharmacy/pickup",
          summary="A remote prescription by the patient's document (or PINFL) and pickup code",
          query={"code": ("6 digits from the SMS", {"type": "string", "pattern": "^[0-9]{6}$"}),
                 "document": ("e.g. AA1234567", DOCUMENT_QUERY),
                 "pinfl": ("14 digits", PINFL_QUERY)},
          refuses=IDENTITY_REFUSED + "; or no request has this code")
def pickup():
    args = request.args
    return jsonify(remote_requests.find_by_pickup_code(
        store(), g.actor, code=args.get("code", ""), document=args.get("document") or None,
        pinfl=args.get("pinfl") or None))
