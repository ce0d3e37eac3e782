"""API: sign-in, staff, facilities, doctors and their schedules."""

from __future__ import annotations

from datetime import date, time

from flask import Blueprint, g, jsonify, request

from ..errors import ValidationFailed
from ..services import facilities, scheduling, sign_in_guard, staff
from ..services.access import ROLES
from . import device_cookies
from .endpoint import DAY_QUERY, ID, STR, endpoint, obj, store

bp = Blueprint("people", __name__, url_prefix="/api/v1")


@endpoint(bp, "POST", "/auth/sign-in", summary="Sign in with username and PIN", public=True,
          body=obj({"username": STR, "pin": STR}))
def sign_in(data):
    result = staff.sign_in(store(), data["username"], data["pin"],
                           device_cookie=device_cookies.presented(data["username"]),
                           secret=device_cookies.secret(), client=device_cookies.client())
    cookie = result.pop("device_cookie", None)
    return device_cookies.remember(jsonify(result), data["username"].strip().lower(), cookie)


@endpoint(bp, "GET", "/auth/failed-sign-ins", summary="Failed and locked sign-ins (admin)")
def failed_sign_ins():
    return jsonify({"sign_ins": sign_in_guard.failed_sign_ins(store(), g.actor)})


@endpoint(bp, "POST", "/auth/sign-out", summary="End this token's session")
def sign_out():
    staff.sign_out(store(), request.headers["Authorization"].removeprefix("Bearer ").strip())
    return jsonify({"signed_out": True})


@endpoint(bp, "GET", "/auth/me", summary="Who is signed in")
def me():
    a = g.actor
    return jsonify({"staff_id": a.actor_id, "role": a.role, "full_name": a.display_name,
                    "practitioner_id": a.practitioner_id})


@endpoint(bp, "POST", "/staff", status=201, summary="Create a staff account (admin)",
          body=obj({"username": STR, "full_name": STR, "role": {"enum": list(ROLES)},
                    "pin": STR}, {"practitioner_id": ID}))
def create_staff(data):
    staff_id = staff.create_staff(store(), g.actor, **data)
    return jsonify({"staff_id": staff_id}), 201


@endpoint(bp, "GET", "/staff", summary="List staff accounts (admin)")
def list_staff():
    return jsonify({"staff": staff.list_staff(store(), g.actor)})


@endpoint(bp, "GET", "/facilities", summary="Facilities known to this node")
def list_facilities():
    return jsonify({"facilities": facilities.list_facilities(store())})


@endpoint(bp, "POST", "/facilities", status=201, summary="Register a facility (admin)",
          body=obj({"code": STR, "name": STR, "kind": {"enum": ["clinic", "pharmacy"]},
                    "region": STR}, {"address": STR}))
def register_facility(data):
    return jsonify({"facility_id": facilities.register_facility(store(), g.actor, **data)}), 201


@endpoint(bp, "GET", "/practitioners", summary="Doctors, by facility and specialty",
          query={"facility_id": "facility ULID", "specialty": "specialty code"})
def list_practitioners():
    return jsonify({"practitioners": facilities.list_practitioners(
        store(), request.args.get("facility_id"), request.args.get("specialty"))})


@endpoint(bp, "POST", "/practitioners", status=201, summary="Register a doctor (admin)",
          body=obj({"facility_id": ID, "full_name": STR,
                    "specialty": {"enum": list(facilities.SPECIALTIES)}},
                   {"is_family_doctor": {"type": "boolean"}}))
def register_practitioner(data):
    pid = facilities.register_practitioner(store(), g.actor, **data)
    return jsonify({"practitioner_id": pid}), 201


@endpoint(bp, "POST", "/practitioners/<practitioner_id>/schedule", status=201,
          summary="Publish a doctor's slots for a run of days (admin)",
          body=obj({"first_day": STR, "days": {"type": "integer"}, "start": STR, "end": STR},
                   {"slot_minutes": {"type": "integer"},
                    "weekdays": {"type": "array", "items": {"type": "integer"}}}))
def publish_schedule(practitioner_id, data):
    result = scheduling.publish_schedule(
        store(), g.actor, practitioner_id=practitioner_id,
        first_day=parse_day(data["first_day"], "first_day"), days=data["days"],
        start=_time(data["start"], "start"), end=_time(data["end"], "end"),
        slot_minutes=data.get("slot_minutes", 20),
        weekdays=tuple(data.get("weekdays", scheduling.WORKING_WEEK)))
    return jsonify(result), 201


@endpoint(bp, "GET", "/practitioners/<practitioner_id>/slots",
          summary="Free slots of a doctor", query={"day": ("YYYY-MM-DD (Tashkent)", DAY_QUERY)})
def free_slots(practitioner_id):
    day = request.args.get("day")
    return jsonify({"slots": scheduling.free_slots(
        store(), practitioner_id, parse_day(day, "day") if day else None)})


def parse_day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationFailed("%(field)s must be a date YYYY-MM-DD", field=field) from None


def _time(text: str, field: str) -> time:
    try:
        return time.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationFailed("%(field)s must be a time HH:MM", field=field) from None
