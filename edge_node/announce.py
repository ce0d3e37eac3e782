"""What this node announces on the LAN, and announcing it while the server runs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sync_protocol.enrolment import Enrolment, EnrolmentError

from . import enrolment
from .discovery import Announcement, Announcer, cert_fingerprint, new_zeroconf

log = logging.getLogger(__name__)

WILDCARDS = ("0.0.0.0", "")  # noqa: S104 (listening everywhere is the point on a LAN)


def software_version() -> str:
    try:
        return version("dmed-edge")
    except PackageNotFoundError:
        return "dev"


def announcement_for(data_dir: Path, credentials: Enrolment | None, addresses: list[str],
                     port: int, *, tls: bool = False) -> Announcement | None:
    """An enrolled node names itself; one waiting for approval shows its request's key
    fingerprint (what the station lists); a node with neither announces nothing."""
    if credentials is not None:
        identity = credentials.identity
        return Announcement(identity.node_id, tuple(addresses), port, True,
                            cert_fingerprint(credentials.cert), identity.node_id,
                            identity.facility_code, str(identity.kind), software_version(),
                            tls)
    try:
        pending = enrolment.pending(enrolment.enrolment_dir(data_dir))
    except (EnrolmentError, OSError):
        return None
    fingerprint = pending.fingerprint.replace(" ", "")
    return Announcement(f"unenrolled-{fingerprint[:12]}", tuple(addresses), port, False,
                        fingerprint, version=software_version())


def lan_addresses(host: str) -> list[str]:
    """The address to announce: the one listened on, or this machine's outgoing IPv4."""
    if host not in WILDCARDS:
        return [host]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent by a UDP connect
            return [probe.getsockname()[0]]
        except OSError:
            return ["127.0.0.1"]


@contextmanager
def announcing(data_dir: Path, credentials: Enrolment | None, host: str, port: int,
               interfaces: list[str] | None = None, *, tls: bool = False
               ) -> Iterator[Announcement | None]:
    """Announce while the block runs; a LAN without multicast only loses the hint."""
    addresses = lan_addresses(host)
    announcement = announcement_for(data_dir, credentials, addresses, port, tls=tls)
    if announcement is None:
        yield None
        return
    try:
        zc = new_zeroconf(interfaces or (None if host in WILDCARDS else [host]))
        announcer = Announcer(zc, announcement)
        announcer.start()
    except OSError as e:
        log.warning("cannot announce on the LAN (%s); terminals need the address typed", e)
        yield None
        return
    try:
        yield announcement
    finally:
        announcer.stop()
        zc.close()
