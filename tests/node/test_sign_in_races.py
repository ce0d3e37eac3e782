"""Issue 11.1: parallel sign-in attempts never check more wrong secrets than the limit.

32 threads start at once against the real services (node staff PIN, kiosk document digits,
hub staff password); the secret check is wrapped to count what it is asked and to widen the
race window. Before the fix the count of failures was read before any attempt had recorded
one, so most of the 32 guesses were checked.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from central_hub import staff as hub_staff
from edge_node.errors import NotSignedIn, TooManyAttempts
from edge_node.services import kiosk_identity, staff

PARALLEL = 32
SLOW_CHECK_SECONDS = 0.05  # every check takes this long at least, as argon2 does on a Pi


def burst(attempt, parallel: int = PARALLEL) -> list[str]:
    """Run `attempt` on `parallel` threads released together; each returns its outcome."""
    gate = threading.Barrier(parallel)

    def run(index: int) -> str:
        gate.wait()
        return attempt(index)

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(run, range(parallel)))


class Counting:
    """Wraps a secret check: counts calls, slows each one down."""

    def __init__(self, check) -> None:
        self.check, self.calls, self.lock = check, 0, threading.Lock()

    def __call__(self, *args):
        with self.lock:
            self.calls += 1
        time.sleep(SLOW_CHECK_SECONDS)
        return self.check(*args)


def outcome(call) -> str:
    try:
        call()
    except TooManyAttempts:
        return "locked"
    except (NotSignedIn, hub_staff.SignInFailed):
        return "wrong"
    except hub_staff.LoginLocked:
        return "locked"
    return "ok"


def test_node_staff_pin_is_checked_at_most_the_limit(store, seeded, monkeypatch):
    counting = Counting(staff._pin_matches)
    monkeypatch.setattr(staff, "_pin_matches", counting)
    results = burst(lambda i: outcome(lambda: staff.sign_in(store, "registrar", f"{i:04d}0")))
    assert counting.calls <= staff.MAX_FAILURES
    assert results.count("wrong") == counting.calls
    assert results.count("locked") == PARALLEL - counting.calls
    # The right PIN from an untrusted client is locked out too, now.
    assert outcome(lambda: staff.sign_in(store, "registrar", "1111")) == "locked"


def test_kiosk_document_digits_are_checked_at_most_the_limit(store, seeded, monkeypatch):
    import hmac
    counting = Counting(hmac.compare_digest)
    monkeypatch.setattr(kiosk_identity, "hmac", SimpleNamespace(compare_digest=counting,
                                                                new=hmac.new))
    patient = seeded["patients"][0]
    right = patient["document"][-4:]
    wrong = [f"{n:04d}" for n in range(10000) if f"{n:04d}" != right]

    def attempt(i: int) -> str:
        # Each thread is a different kiosk: only the per-PINFL limit applies.
        return outcome(lambda: kiosk_identity.identify(
            store, kiosk_id=f"10.0.0.{i}", pinfl=patient["pinfl"], document_digits=wrong[i]))

    results = burst(attempt)
    assert counting.calls <= kiosk_identity.MAX_FAILURES_PER_PINFL
    assert results.count("wrong") == counting.calls
    assert results.count("locked") == PARALLEL - counting.calls


def test_hub_staff_password_is_checked_at_most_the_limit(storage, monkeypatch):
    hub_staff.create_staff(storage, login="karimova", full_name="Karimova Nilufar",
                           role="central", password="correct horse battery")
    counting = Counting(hub_staff._matches)
    monkeypatch.setattr(hub_staff, "_matches", counting)
    results = burst(lambda i: outcome(
        lambda: hub_staff.authenticate(storage, "karimova", f"wrong password {i}")))
    assert counting.calls <= hub_staff.MAX_FAILURES
    assert results.count("wrong") + results.count("locked") == PARALLEL
    with pytest.raises(hub_staff.LoginLocked):
        hub_staff.authenticate(storage, "karimova", "correct horse battery")


@pytest.mark.parametrize("surface", ["api", "screens"])
def test_node_sign_in_through_the_web_holds_the_limit(app, seeded, monkeypatch, surface):
    from helpers.ui import post
    counting = Counting(staff._pin_matches)
    monkeypatch.setattr(staff, "_pin_matches", counting)
    clients = [app.test_client() for _ in range(PARALLEL)]

    def attempt(i: int) -> str:
        pin = f"{i:04d}9"
        if surface == "api":
            response = clients[i].post("/api/v1/auth/sign-in",
                                       json={"username": "doctor", "pin": pin})
        else:  # the desk's sign-in form answers with the form, its error and the same status
            response = post(clients[i], "/ui/desk/sign-in", {"username": "doctor", "pin": pin})
        return {401: "wrong", 429: "locked"}.get(response.status_code,
                                                 str(response.status_code))

    results = burst(attempt)
    assert counting.calls <= staff.MAX_FAILURES
    assert results.count("wrong") == counting.calls
    assert results.count("locked") == PARALLEL - counting.calls
