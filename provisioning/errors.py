"""One exception tree for provisioning; the CLI turns every one into a ClickException.

Messages are English gettext msgids with %(name)s placeholders, as in sync_protocol.errors.
Invalid node identities and trust-list problems are errors of sync_protocol.certificates
and sync_protocol.trust_list and pass through unchanged (they are TrustError, a
ProtocolError too).
"""

from __future__ import annotations

from sync_protocol.errors import ProtocolError


class ProvisioningError(ProtocolError):
    code = "provisioning_error"


class InvalidRequest(ProvisioningError, ValueError):
    """Arguments that cannot make a certificate: bad region code, wrong issuer, bad kind."""

    code = "invalid_request"


class AlreadyExists(ProvisioningError):
    """A root, region, node or file that exists already and would be overwritten."""

    code = "already_exists"


class NotFound(ProvisioningError):
    """A store, region or node that is not there."""

    code = "not_found"


class KeystoreError(ProvisioningError):
    """A key or certificate file that cannot be read or written (never shows key material)."""

    code = "keystore_error"
