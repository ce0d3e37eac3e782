"""A facility as the region provisions it, signed by the region's key.

The region's provisioning records each facility (code, kind, names in uz/ru/en, address,
region, district, opening hours for a clinic) and signs the record; enrolment carries it to
the node, which checks the signature against its own chain before registering the facility.
So a node serves at once after `dmed-node init`, and no facility is ever typed on a node.

Wire form (facility.json in a bundle or an enrolment answer):

    {"format": "dmed-facility", "version": 1, "record": {...}, "signature": "<base64 DER>",
     "signer": "<hex kid of the region certificate>"}

The signature is ECDSA-SHA256 (or Ed25519) over the canonical JSON of "record" (sorted keys,
no spaces, UTF-8), the same bytes on every machine.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from .certificates import FACILITY_CODE_RE, REGION_CODE_RE, kid_of, region_code_of
from .errors import ProtocolError
from .identifiers import is_ulid

log = logging.getLogger(__name__)

FACILITY_FORMAT = "dmed-facility"
FACILITY_VERSION = 1
LANGUAGES = ("uz", "ru", "en")  # Uzbek (Latin) first: every record names all three
FACILITY_KINDS = ("clinic", "pharmacy")
MAX_NAME = 200  # the FacilityRegistered event's NAME limit
MAX_ADDRESS = 400
MAX_DISTRICT = 64
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]")


class FacilityInvalid(ProtocolError, ValueError):
    code = "facility_invalid"


class FacilitySignatureInvalid(ProtocolError):
    code = "facility_signature_invalid"


@dataclass(frozen=True)
class FacilityRecord:
    facility_id: str  # a ULID given once by the region; a replacement node keeps it
    code: str
    kind: str
    region: str
    names: dict[str, str]
    address: str
    district: str
    opening_hours: dict[str, str] = field(default_factory=dict)  # day -> "08:00-17:00"
    revision: int = 1  # grows with every change the region signs

    def __post_init__(self) -> None:
        if not isinstance(self.facility_id, str) or not is_ulid(self.facility_id):
            raise FacilityInvalid("Facility id %(value)r is not a ULID.", field="facility_id",
                                  value=self.facility_id)
        for name, pattern in (("code", FACILITY_CODE_RE), ("region", REGION_CODE_RE)):
            value = getattr(self, name)
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise FacilityInvalid("%(name)s %(value)r does not match %(pattern)s.",
                                      field=name, name=name, value=value,
                                      pattern=pattern.pattern)
        if self.kind not in FACILITY_KINDS:
            raise FacilityInvalid("Facility kind must be clinic or pharmacy.", field="kind")
        if not isinstance(self.names, dict) or set(self.names) != set(LANGUAGES):
            raise FacilityInvalid("The facility needs a name in each of uz, ru and en.",
                                  field="names")
        for language in LANGUAGES:
            _text(self.names[language], f"names.{language}", MAX_NAME)
        _text(self.address, "address", MAX_ADDRESS)
        _text(self.district, "district", MAX_DISTRICT)
        if not isinstance(self.opening_hours, dict):
            raise FacilityInvalid("Opening hours must map days to hours.", field="opening_hours")
        for day, hours in self.opening_hours.items():
            if day not in DAYS or not isinstance(hours, str) or not HOURS_RE.fullmatch(hours):
                raise FacilityInvalid("Opening hours %(day)s %(hours)r: use a day of %(days)s "
                                      "and HH:MM-HH:MM.", field="opening_hours", day=day,
                                      hours=hours, days=", ".join(DAYS))
        if self.kind == "clinic" and not self.opening_hours:
            raise FacilityInvalid("A clinic needs its opening hours.", field="opening_hours")
        if not isinstance(self.revision, int) or self.revision < 1:
            raise FacilityInvalid("Revision must be a positive number.", field="revision")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FacilityRecord:
        if not isinstance(data, dict):
            raise FacilityInvalid("A facility record must be a JSON object.")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise FacilityInvalid("Unknown facility fields: %(names)s.",
                                  names=", ".join(sorted(unknown)))
        try:
            return cls(**data)
        except TypeError as e:
            raise FacilityInvalid("A facility record is missing fields.") from e

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    def event_payload(self) -> dict[str, Any]:
        """The FacilityRegistered payload the node appends (its name in Uzbek first)."""
        return {"facility_id": self.facility_id, "code": self.code, "name": self.names["uz"],
                "kind": self.kind, "region": self.region, "address": self.address}


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sign_facility(record: FacilityRecord, key: Any, region_cert: x509.Certificate
                  ) -> dict[str, Any]:
    """The signed wire form; `key` is the region's private key."""
    if region_code_of(region_cert) != record.region:
        raise FacilityInvalid("Region %(signer)s may not sign a facility of region %(region)s.",
                              field="region", signer=region_code_of(region_cert),
                              region=record.region)
    data = record.canonical()
    signature = (key.sign(data) if isinstance(key, ed25519.Ed25519PrivateKey)
                 else key.sign(data, ec.ECDSA(hashes.SHA256())))
    return {"format": FACILITY_FORMAT, "version": FACILITY_VERSION, "record": record.to_dict(),
            "signature": base64.b64encode(signature).decode("ascii"),
            "signer": kid_of(region_cert).hex()}


def verify_facility(signed: Any, region_cert: x509.Certificate) -> FacilityRecord:
    """The record, if `region_cert` signed it and it belongs to that region."""
    if (not isinstance(signed, dict) or signed.get("format") != FACILITY_FORMAT
            or signed.get("version") != FACILITY_VERSION):
        raise FacilityInvalid("This is not a signed facility record.")
    record = FacilityRecord.from_dict(signed.get("record"))
    if record.region != region_code_of(region_cert):
        raise FacilitySignatureInvalid("Facility %(facility_code)s belongs to region %(region)s, "
                                       "not to the region that issued this node.",
                                       facility_code=record.code, region=record.region)
    try:
        signature = base64.b64decode(str(signed.get("signature", "")), validate=True)
        public = region_cert.public_key()
        data = record.canonical()
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except (InvalidSignature, ValueError) as e:
        raise FacilitySignatureInvalid("The facility record %(facility_code)s is not signed by "
                                       "its region.", facility_code=record.code) from e
    return record


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise FacilityInvalid("%(name)s is required (at most %(limit)s characters).",
                              field=name, name=name, limit=limit)
    return value
