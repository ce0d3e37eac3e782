"""`dmed-node doctor`: a health check regional IT runs on a node, with what to do for each
problem: clock, disk, certificate expiry, hub reachability, log integrity, pending events
and the LAN announcement.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from sync_protocol.enrolment import Enrolment
from sync_protocol.errors import ProtocolError
from sync_protocol.events import verify_chain
from sync_protocol.trust_list import TrustList

from .enrolment import RENEW_BEFORE_DAYS
from .services.clock import clock_status
from .store import NodeStore
from .sync.agent import sync_status

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 500 * 1024 * 1024  # a day of a busy clinic's log, WAL and a backup copy
MIN_FREE_FRACTION = 0.05
HUB_TIMEOUT = 5.0
# Ten minutes of writes at a clinic: more waiting than that means sync is stuck.
PENDING_WARNING = 500
ANNOUNCE_WAIT = 3.0

OK, PROBLEM, SKIPPED = "ok", "problem", "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    state: str
    detail: str
    advice: str = ""


def run_checks(store: NodeStore, credentials: Enrolment | None, hub_url: str, *,
               now: datetime | None = None, interfaces: list[str] | None = None,
               announce_wait: float = ANNOUNCE_WAIT) -> list[Check]:
    now = datetime.now(UTC) if now is None else now
    checks: list[Callable[[], Check]] = [
        lambda: check_clock(store), lambda: check_disk(store.path.parent),
        lambda: check_certificate(credentials, now, _trust_list(store, credentials)),
        lambda: check_hub(hub_url),
        lambda: check_log(store), lambda: check_pending(store, bool(hub_url)),
        lambda: check_announcement(credentials, interfaces, announce_wait)]
    results = []
    for check in checks:
        try:
            results.append(check())
        except Exception as e:  # one broken check must not hide the others
            log.exception("health check failed")
            results.append(Check("check", PROBLEM, f"the check itself failed: {e}",
                                 "Report this to the regional IT team."))
    return results


def check_clock(store: NodeStore) -> Check:
    status = clock_status(store)
    if status["verified"]:
        return Check("clock", OK, f"confirmed at {status['confirmed_at']}")
    return Check("clock", PROBLEM, f"not confirmed ({status['reason']})",
                 "Check the time against a phone and confirm it on the node's screen (or "
                 "sync with the hub); until then pharmacies never say 'valid'.")


def check_disk(directory: Path) -> Check:
    usage = shutil.disk_usage(directory)
    free_mb = usage.free // (1024 * 1024)
    if usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_FRACTION:
        return Check("disk", PROBLEM, f"{free_mb} MB free of {usage.total // 2**20} MB",
                     "Free space: remove old backups from the card, or move the data to a "
                     "larger card (backup, then restore onto it).")
    return Check("disk", OK, f"{free_mb} MB free")


def _trust_list(store: NodeStore, credentials: Enrolment | None):
    """The synced trust list (revocations learnt from the hub), else the enrolment's."""
    from .trust_store import current_trust_list
    return current_trust_list(store, credentials) if credentials is not None else None


def check_certificate(credentials: Enrolment | None, now: datetime,
                      trust_list: TrustList | None = None) -> Check:
    if credentials is None:
        return Check("certificate", PROBLEM, "this node is not enrolled",
                     "Run `dmed-node enrol` and have the region approve it.")
    verdict = (trust_list or credentials.trust_list).verify_chain(credentials.cert, now)
    until = credentials.cert.not_valid_after_utc
    days = (until - now).days
    if not verdict.ok:
        return Check("certificate", PROBLEM, verdict.message,
                     "Ask the region: a revoked or expired node needs a new enrolment.")
    if days <= RENEW_BEFORE_DAYS:
        return Check("certificate", PROBLEM, f"expires in {days} days ({until:%Y-%m-%d})",
                     "Run `dmed-node enrol --renew --station URL`; the node keeps serving.")
    return Check("certificate", OK, f"valid until {until:%Y-%m-%d} ({days} days)")


def check_hub(hub_url: str) -> Check:
    if not hub_url:
        return Check("hub", SKIPPED, "no hub configured (stand-alone)")
    try:
        response = requests.get(hub_url.rstrip("/") + "/healthz", timeout=HUB_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as e:
        return Check("hub", PROBLEM, f"{hub_url} cannot be reached ({type(e).__name__})",
                     "Check the internet link and DMED_HUB_URL; the node works offline and "
                     "syncs when the hub is back.")
    return Check("hub", OK, f"{hub_url} answers")


def check_log(store: NodeStore) -> Check:
    origins = [r["origin"] for r in store.query("SELECT DISTINCT origin FROM events")]
    try:
        for origin in origins:
            verify_chain(sorted(store.events(origin=origin), key=lambda e: e.seq))
    except ProtocolError as e:
        return Check("log", PROBLEM, e.text,
                     "Stop the node and call regional IT: restore the last backup, or "
                     "replace the node from the hub. Do not delete anything.")
    return Check("log", OK, f"{len(origins)} origin(s) verified")


def check_pending(store: NodeStore, configured: bool) -> Check:
    status = sync_status(store, configured)
    detail = f"{status['pending']} event(s) waiting for the hub"
    if status["refused"] or status["apply_failures"]:
        return Check("pending", PROBLEM, f"{detail}; {status['refused']} refused, "
                     f"{status['apply_failures']} not applied",
                     "Open the sync problems screen (admin) and report them.")
    if configured and status["pending"] > PENDING_WARNING:
        return Check("pending", PROBLEM, detail,
                     "Sync is not keeping up: check the hub check above and the last error "
                     "on the node's status screen.")
    return Check("pending", OK, detail)


def check_announcement(credentials: Enrolment | None, interfaces: list[str] | None,
                       wait: float) -> Check:
    from .discovery import NodeBrowser, cert_fingerprint, new_zeroconf
    if credentials is None:
        return Check("lan", SKIPPED, "not enrolled: nothing to look for")
    wanted = cert_fingerprint(credentials.cert)
    zc = new_zeroconf(interfaces)
    browser = NodeBrowser(zc)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if any(a.fingerprint == wanted for a in browser.announcements()):
                return Check("lan", OK, "this node is announced on the LAN")
            time.sleep(0.1)
    finally:
        browser.close()
        zc.close()
    return Check("lan", PROBLEM, "this node is not announced on the LAN",
                 "Start the server with `dmed-node serve --host 0.0.0.0` (announcing is on "
                 "by default) and let UDP port 5353 through; terminals can still be given "
                 "the address by hand.")
