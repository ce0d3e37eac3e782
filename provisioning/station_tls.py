"""The provisioning station's own TLS certificate: operator passwords and session cookies
never cross the region's LAN in clear.

The station runs on the machine that holds the region's key, so it certifies itself as a node
is certified (provisioning.pki.certify_tls_server): a key born here (0600, never leaves
station-tls/), a certificate under the region for the station's `.local` name and addresses,
valid for TLS_VALIDITY. Clients (`dmed-node enrol --station-ca`, the operators' browsers)
trust the national root only. The certificate is issued again at start-up when it is missing,
near its end, or does not name every name and address the station is to be reached by.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from provisioning.errors import InvalidRequest
from provisioning.keystore import (
    CaStore,
    make_private_dir,
    read_certificates,
    write_certificates,
    write_private_key,
)
from provisioning.pki import certify_tls_server, generate_key

log = logging.getLogger(__name__)

STATION_TLS_DIR = "station-tls"
CERT_FILE, KEY_FILE = "cert.pem", "key.pem"
# Issued again at start-up this close to its end (a station restarts at least monthly for
# updates; a node renews at 30 days too).
RENEW_BEFORE = timedelta(days=30)
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 (names of the wildcard, not a bind)
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)"
                         r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def default_names() -> list[str]:
    """`<hostname>.local`: the name zeroconf gives the region's machine on the LAN."""
    host = socket.gethostname().split(".")[0].lower()
    return [f"{host}.local"] if DNS_NAME_RE.fullmatch(host) else []


def station_tls(store: CaStore, *, host: str, names: Iterable[str] = (),
                addresses: Iterable[str] = (), region_code: str | None = None,
                now: datetime | None = None) -> tuple[Path, Path]:
    """Paths of the station's certificate (with the region's) and key, issued if needed."""
    now = datetime.now(UTC) if now is None else now
    dns_names = _dns_names(list(names) or default_names())
    ips = _addresses([*addresses, *([] if host in WILDCARDS else [host])])
    directory = store.directory / STATION_TLS_DIR
    cert_file, key_file = directory / CERT_FILE, directory / KEY_FILE
    if _still_good(cert_file, key_file, dns_names, ips, now):
        return cert_file, key_file
    region = store.region(_region(store, region_code))
    key = generate_key()
    cert = certify_tls_server(region, dns_names, ips, key.public_key(), now=now)
    if not directory.is_dir():
        make_private_dir(directory)
    # The key first: a server reloading between the two writes meets a pair that does not
    # match, keeps its current one and loads the new pair at its next connection.
    write_private_key(key_file, key, overwrite=True)
    write_certificates(cert_file, (cert, region.cert))
    log.info("station TLS certificate issued for %s until %s",
             ", ".join([*dns_names, *map(str, ips)]), cert.not_valid_after_utc)
    return cert_file, key_file


def _region(store: CaStore, region_code: str | None) -> str:
    codes = store.region_codes()
    if region_code:
        return region_code
    if len(codes) == 1:
        return codes[0]
    if not codes:
        raise InvalidRequest("This store has no region to certify the station; run "
                             "add-region first.", field="region")
    raise InvalidRequest("This store holds regions %(regions)s: choose the station's with "
                         "--tls-region.", field="region", regions=", ".join(codes))


def _dns_names(names: list[str]) -> list[str]:
    cleaned = [n.strip().lower().rstrip(".") for n in names]
    bad = [n for n in cleaned if not DNS_NAME_RE.fullmatch(n)]
    if bad or not cleaned:
        raise InvalidRequest("%(names)s is not a host name for the station's certificate; "
                             "give one with --tls-name, e.g. provision.local.", field="tls_name",
                             names=", ".join(bad) or "nothing")
    return list(dict.fromkeys(cleaned))


def _addresses(values: list[str]) -> list:
    try:
        return list(dict.fromkeys(ipaddress.ip_address(v.strip("[]")) for v in values))
    except ValueError as e:
        raise InvalidRequest("%(error)s: give the station's LAN address as --tls-address "
                             "192.168.1.10.", field="tls_address", error=str(e)) from e


def _still_good(cert_file: Path, key_file: Path, dns_names: list[str], ips: list,
                now: datetime) -> bool:
    if not (cert_file.is_file() and key_file.is_file()):
        return False
    cert = read_certificates(cert_file)[0]
    if cert.not_valid_after_utc - now < RENEW_BEFORE or cert.not_valid_before_utc > now:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (set(dns_names) <= set(san.get_values_for_type(x509.DNSName))
            and set(ips) <= set(san.get_values_for_type(x509.IPAddress)))
