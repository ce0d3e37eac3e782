"""LAN discovery with zeroconf (DNS-SD), as Kolibri announces its devices: the shared part.

Nodes announce (edge_node.announce), terminals and `dmed-node discover` browse, and the
provisioning station lists what it finds; all use this value class and browser.

A node announces SERVICE_TYPE with TXT records naming only the device: node id, facility,
kind, software version and its certificate's SHA-256 fingerprint (never a patient datum), and
answers at `<facility-code>.local`. A node not yet enrolled announces that too, with the
fingerprint of the key in its pending request, so the station can list it beside the request.

Discovery is a hint, never trust (DESIGN lesson 9): edge_node.discovery.verify_peer checks
a found node by its certificate before a terminal uses it.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

log = logging.getLogger(__name__)

SERVICE_TYPE = "_dmed-edge._tcp.local."
PROTOCOL_VERSION = "1"
# TXT records hold 255 bytes each; keep values well inside (Home Assistant uses 230).
MAX_PROPERTY_VALUE_LEN = 230
# The only keys a node ever puts in its announcement: nothing about a patient fits here.
TXT_KEYS = ("node_id", "facility", "kind", "version", "fingerprint", "enrolled", "proto",
            "tls")
INFO_TIMEOUT_MS = 3000


def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex: what a terminal is configured with."""
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Announcement:
    """What one node says about itself on the LAN (a value class, as in Kolibri)."""

    name: str  # instance name: the node id, or "unenrolled-<fingerprint prefix>"
    addresses: tuple[str, ...]
    port: int
    enrolled: bool
    fingerprint: str
    node_id: str | None = None
    facility: str | None = None
    kind: str | None = None
    version: str = ""
    tls: bool = False  # the port speaks HTTPS (sync_protocol.tls_serving)

    @property
    def host(self) -> str:
        """`<facility-code>.local` (lower case), or the instance name before enrolment."""
        label = (self.facility or self.name).lower()
        return f"{label}.local."

    @property
    def address(self) -> str:
        return f"{self.addresses[0]}:{self.port}" if self.addresses else ""

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def properties(self) -> dict[str, str]:
        values = {"node_id": self.node_id or "", "facility": self.facility or "",
                  "kind": self.kind or "", "version": self.version,
                  "fingerprint": self.fingerprint, "enrolled": "1" if self.enrolled else "0",
                  "proto": PROTOCOL_VERSION, "tls": "1" if self.tls else "0"}
        for key, value in values.items():
            if len(value.encode("utf-8")) > MAX_PROPERTY_VALUE_LEN:
                raise ValueError(f"TXT value {key} is longer than {MAX_PROPERTY_VALUE_LEN}")
        return values

    def to_service_info(self) -> ServiceInfo:
        return ServiceInfo(SERVICE_TYPE, f"{self.name}.{SERVICE_TYPE}",
                           addresses=[socket.inet_aton(a) for a in self.addresses],
                           port=self.port, properties=self.properties(), server=self.host)

    @classmethod
    def from_service_info(cls, info: ServiceInfo) -> Announcement:
        props = {(k or b"").decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace")
                 for k, v in (info.properties or {}).items()}
        return cls(name=info.name.removesuffix("." + SERVICE_TYPE),
                   addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
                   port=int(info.port or 0), enrolled=props.get("enrolled") == "1",
                   fingerprint=props.get("fingerprint", ""),
                   node_id=props.get("node_id") or None, facility=props.get("facility") or None,
                   kind=props.get("kind") or None, version=props.get("version", ""),
                   tls=props.get("tls") == "1")


def new_zeroconf(interfaces: list[str] | None = None) -> Zeroconf:
    """IPv4 zeroconf on the given interface addresses (all by default)."""
    if interfaces:
        return Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    return Zeroconf(ip_version=IPVersion.V4Only)


class Announcer:
    def __init__(self, zc: Zeroconf, announcement: Announcement) -> None:
        self.zc, self.announcement = zc, announcement
        self._info = announcement.to_service_info()

    def start(self) -> None:
        self.zc.register_service(self._info, allow_name_change=True)
        log.info("announcing %s at %s", self.announcement.name, self.announcement.address)

    def stop(self) -> None:
        self.zc.unregister_service(self._info)


class NodeBrowser:
    """Collects announcements; one bad packet never stops the listener."""

    def __init__(self, zc: Zeroconf) -> None:
        self.zc = zc
        self._seen: dict[str, Announcement] = {}
        self._lock = threading.Lock()
        self._browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[self._changed])

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str,
                 state_change: ServiceStateChange) -> None:
        try:
            if state_change is ServiceStateChange.Removed:
                with self._lock:
                    self._seen.pop(name, None)
                return
            info = zeroconf.get_service_info(service_type, name, timeout=INFO_TIMEOUT_MS)
            if info is not None:
                with self._lock:
                    self._seen[name] = Announcement.from_service_info(info)
        except Exception:  # a malformed record must not kill discovery
            log.warning("ignored a bad announcement %s", name, exc_info=True)

    def announcements(self) -> list[Announcement]:
        with self._lock:
            return sorted(self._seen.values(), key=lambda a: a.name)

    def close(self) -> None:
        self._browser.cancel()


def choose(announcements: list[Announcement], fingerprint: str | None) -> Announcement | None:
    """The node a terminal should talk to: the one with its fingerprint, or the only one."""
    enrolled = [a for a in announcements if a.enrolled]
    if fingerprint:
        wanted = _normal(fingerprint)
        matches = [a for a in enrolled if _normal(a.fingerprint) == wanted]
        return matches[0] if len(matches) == 1 else None
    return enrolled[0] if len(enrolled) == 1 else None


def _normal(fingerprint: str) -> str:
    return fingerprint.replace(":", "").replace(" ", "").lower()
