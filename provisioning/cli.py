"""dmed-provision: the regional IT staff's tool to issue and revoke keys (thin layer on CaStore).

No command ever prints key material: bundles go to files, the output names them.
"""

from __future__ import annotations

import getpass
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from provisioning.cli_base import (
    DIR_ENV,
    PASSPHRASE_ENV,
    _library_errors,
    _store,
    dir_option,
    main,
)
from provisioning.keystore import read_bundle
from provisioning.pki import KeyAlgorithm
from sync_protocol.bundle_passphrase import (
    bundle_key_is_encrypted,
    get_passphrase,
    passphrase_file_option,
)
from sync_protocol.certificates import identity_of, kid_of, region_code_of

log = logging.getLogger(__name__)

__all__ = ["DIR_ENV", "PASSPHRASE_ENV", "main"]  # the entry point and what tests set


def _until(cert: Any) -> str:
    return cert.not_valid_after_utc.strftime("%Y-%m-%d")


algorithm_option = click.option(
    "--algorithm", type=click.Choice([a.value for a in KeyAlgorithm]),
    default=KeyAlgorithm.EC_P256.value, show_default=True,
    help="Key type; prescriptions are signed ES256, so keep ec-p256 unless told otherwise.")


@main.command("init-root")
@dir_option
@click.option("--name", required=True, help="Common name of the national root.")
@algorithm_option
@_library_errors
def init_root(directory: Path, name: str, algorithm: str) -> None:
    """Create a new store with a national root key and certificate (valid 20 years)."""
    root = _store(directory).init_root(name, algorithm=algorithm)
    click.echo(f"Root {name!r} created in {directory} (kid {root.kid.hex()}, "
               f"valid until {_until(root.cert)}).")


@main.command("add-region")
@dir_option
@click.option("--code", required=True, help="Region code, capitals, e.g. TAS.")
@click.option("--name", required=True, help="Common name of the region, e.g. 'Toshkent shahri'.")
@algorithm_option
@_library_errors
def add_region(directory: Path, code: str, name: str, algorithm: str) -> None:
    """Certify a regional key with the root; it may certify nodes of that region (10 years)."""
    region = _store(directory).add_region(code, name, algorithm=algorithm)
    click.echo(f"Region {code} created (kid {region.kid.hex()}, "
               f"valid until {_until(region.cert)}).")


@main.command("add-node")
@dir_option
@click.option("--region", "region_code", required=True, help="Code of the issuing region.")
@click.option("--node-id", required=True, help="Node id, e.g. tas-clinic-0042.")
@click.option("--facility", "facility_code", required=True, help="Facility code of the node.")
@click.option("--kind", type=click.Choice(["clinic", "pharmacy"]), required=True,
              help="clinic nodes may sign prescriptions; pharmacy nodes may not.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Where to write the enrolment bundle: a new directory, or a file if "
                   "the name ends in .json.")
@algorithm_option
@passphrase_file_option
@click.option("--insecure-plain-key", is_flag=True,
              help="Write the key unencrypted: ONLY for the loopback demo and tests, never "
                   "for a real node.")
@_library_errors
def add_node(directory: Path, region_code: str, node_id: str, facility_code: str, kind: str,
             out: Path, algorithm: str, passphrase_file: Path | None,
             insecure_plain_key: bool) -> None:
    """Issue a node key and certificate (2 years) and write its enrolment bundle.

    The bundle holds the node's private key (file mode 0600), encrypted with a passphrase of
    at least 12 characters (--passphrase-file, $DMED_BUNDLE_PASSPHRASE, or asked twice), with
    its certificate, chain and the current trust list. The key is not kept in the store:
    hand the bundle to the node on a medium you control and delete it afterwards.
    --insecure-plain-key writes the key in clear: loopback demo and tests only.
    """
    from provisioning.facilities import list_facilities, signed_facility
    passphrase = None if insecure_plain_key else get_passphrase(passphrase_file, confirm=True)
    store = _store(directory)
    provisioned = {f.code for f in list_facilities(store)}
    # The facility rides with the bundle when the region recorded it (add-facility).
    facility = signed_facility(store, facility_code) if facility_code in provisioned else None
    bundle = store.add_node(region_code, node_id, facility_code, kind, out=out,
                            algorithm=algorithm, facility=facility, passphrase=passphrase)
    click.echo(f"Node {node_id} ({kind}, facility {facility_code}, region {region_code}) "
               f"enrolled: kid {bundle.node.kid.hex()}, valid until "
               f"{_until(bundle.node.cert)}. Bundle written to {out}.")


@main.command("revoke")
@dir_option
@click.option("--node-id", help="Revoke every certificate of this node.")
@click.option("--region", "region_code",
              help="Revoke a region, and with it every node it certified.")
@click.option("--reason", required=True, help="Why, for the people who will see it.")
@click.option("--operator", default=None,
              help="Who decides, for the station's audit trail (default: your login name).")
@_library_errors
def revoke_command(directory: Path, node_id: str | None, region_code: str | None,
                   reason: str, operator: str | None) -> None:
    """Revoke a node or a region for good; it spreads with the trust list at the next sync.

    Audited in the station's trail, as a revocation at the station is."""
    from provisioning.enrolment_desk import EnrolmentDesk
    if (node_id is None) == (region_code is None):
        raise click.UsageError("Give exactly one of --node-id and --region.")
    store = _store(directory)
    store.trust_list()  # no store here: say so before the audit trail is opened
    desk = EnrolmentDesk(store)
    actor = operator or f"cli:{getpass.getuser()}"
    if node_id is not None:
        revoked = desk.revoke_node(node_id, reason, actor=actor)
        kids = ", ".join(r.kid.hex() for r in revoked)
        click.echo(f"Node {node_id} revoked ({len(revoked)} certificate(s): {kids}).")
    else:
        revocation = desk.revoke_region(region_code or "", reason, actor=actor)
        click.echo(f"Region {region_code} revoked (kid {revocation.kid.hex()}); "
                   "every node it certified is refused from now on.")


@main.command("trust-list")
@dir_option
@_library_errors
def trust_list_command(directory: Path) -> None:
    """Print the trust list (certificates and revocations) as JSON, for the hub and nodes."""
    click.echo(_store(directory).trust_list().to_json(indent=2))


@main.command("show")
@dir_option
@_library_errors
def show(directory: Path) -> None:
    """Summarise the store: root, regions, nodes and whether each verifies now."""
    trust_list = _store(directory).trust_list()
    now = datetime.now(UTC)
    for root in trust_list.roots:
        click.echo(f"root    {root.subject.rfc4514_string()}  kid {kid_of(root).hex()}  "
                   f"until {_until(root)}")
    for region in trust_list.regions:
        state = "revoked" if trust_list.revocation(region) else "ok"
        click.echo(f"region  {region_code_of(region)}  kid {kid_of(region).hex()}  "
                   f"until {_until(region)}  {state}")
    for node in trust_list.nodes:
        identity, verdict = identity_of(node), trust_list.verify_chain(node, now)
        click.echo(f"node    {identity.node_id}  {identity.kind}  {identity.facility_code}  "
                   f"{identity.region_code}  kid {kid_of(node).hex()}  until {_until(node)}  "
                   f"{'ok' if verdict.ok else verdict.reason}")
    click.echo(f"{len(trust_list.revocations)} revocation(s); digest {trust_list.digest()}")


@main.command("check-bundle")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@passphrase_file_option
@_library_errors
def check_bundle(bundle: Path, passphrase_file: Path | None) -> None:
    """Check an enrolment bundle: key matches certificate, and the chain verifies now."""
    loaded = read_bundle(bundle, _bundle_passphrase(bundle, passphrase_file))
    verdict = loaded.verify(datetime.now(UTC))
    identity = loaded.identity
    if not verdict.ok:
        raise click.ClickException(f"Bundle for node {identity.node_id} does not verify: "
                                   f"{verdict.message}")
    click.echo(f"Bundle for {identity.kind} node {identity.node_id} (facility "
               f"{identity.facility_code}, region {identity.region_code}) verifies; "
               f"trust list digest {loaded.trust_list.digest()}.")


def _bundle_passphrase(bundle: Path, passphrase_file: Path | None) -> bytes | None:
    """The passphrase if the bundle's key is encrypted, else None (an old, clear bundle)."""
    return (get_passphrase(passphrase_file, confirm=False)
            if bundle_key_is_encrypted(bundle) else None)


# Facility and enrolment-desk commands register themselves on `main`.
from provisioning import desk_cli  # noqa: E402, F401
