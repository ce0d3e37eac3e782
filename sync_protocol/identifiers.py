"""Identifiers of the domain: PINFL, Uzbek phone numbers, identity documents, ULIDs.

Each parser takes what a person typed and returns a normalised value, or raises an
``InvalidIdentifier`` leaf whose message says which part is wrong.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

import phonenumbers
from ulid import ULID

from .errors import InvalidDocument, InvalidPhone, InvalidPinfl

log = logging.getLogger(__name__)

PINFL_LENGTH = 14
# Weights of the PINFL check digit, repeated over the first 13 digits.
PINFL_WEIGHTS = (7, 3, 1) * 5
# Digit 1 encodes century and sex: odd = male.
PINFL_CENTURIES = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
UZ_COUNTRY_CODE = 998
DOCUMENT_PATTERN = re.compile(r"^([A-Z]{2})(\d{7})$")
# Cyrillic capitals drawn like Latin ones: a series typed under a Russian layout (АВ1112233)
# is the same document as AB1112233. Only true look-alikes: Г or Д stay errors.
CYRILLIC_LOOKALIKES = str.maketrans("АВЕКМНОРСТУХІ", "ABEKMHOPCTYXI")


@dataclass(frozen=True)
class Pinfl:
    digits: str
    birth_date: date
    sex: str  # "male" or "female"
    district: str
    serial: str

    def __str__(self) -> str:
        return self.digits


def pinfl_check_digit(first13: str) -> int:
    return sum(int(d) * w for d, w in zip(first13, PINFL_WEIGHTS, strict=False)) % 10


def parse_pinfl(text: str) -> Pinfl:
    """Parse a PINFL (JShShIR); the error names the first part that is wrong."""
    digits = (text or "").strip().replace(" ", "")
    if len(digits) != PINFL_LENGTH:
        raise InvalidPinfl("PINFL must have 14 digits, got %(count)s", part="length",
                           count=len(digits))
    if not digits.isascii() or not digits.isdigit():
        raise InvalidPinfl("PINFL must contain digits only", part="digits")
    century_digit = int(digits[0])
    if century_digit not in PINFL_CENTURIES:
        raise InvalidPinfl("PINFL first digit (century and sex) must be 1 to 6, got %(digit)s",
                           part="century", digit=century_digit)
    day, month, year2 = int(digits[1:3]), int(digits[3:5]), int(digits[5:7])
    try:
        birth = date(PINFL_CENTURIES[century_digit] + year2, month, day)
    except ValueError:
        raise InvalidPinfl("PINFL digits 2-7 are not a valid birth date (DDMMYY): %(value)s",
                           part="birth_date", value=digits[1:7]) from None
    if digits[7:10] == "000":
        raise InvalidPinfl("PINFL district code (digits 8-10) must not be 000", part="district")
    if digits[10:13] == "000":
        raise InvalidPinfl("PINFL serial number (digits 11-13) must not be 000", part="serial")
    expected = pinfl_check_digit(digits[:13])
    if int(digits[13]) != expected:
        raise InvalidPinfl("PINFL check digit (digit 14) is wrong", part="check_digit")
    return Pinfl(
        digits=digits,
        birth_date=birth,
        sex="male" if century_digit % 2 else "female",
        district=digits[7:10],
        serial=digits[10:13],
    )


def make_pinfl(birth_date: date, sex: str, district: str = "001", serial: str = "001") -> str:
    """Build a valid PINFL; used by seeding and tests."""
    century = {1800: 1, 1900: 3, 2000: 5}[birth_date.year // 100 * 100]
    first = century + (0 if sex == "male" else 1)
    body = f"{first}{birth_date:%d%m}{birth_date.year % 100:02d}{district}{serial}"
    return body + str(pinfl_check_digit(body))


def parse_phone(text: str) -> str:
    """Parse an Uzbek mobile or fixed number (+998 and 9 digits); return E.164."""
    raw = (text or "").strip()
    try:
        number = phonenumbers.parse(raw, "UZ")
    except phonenumbers.NumberParseException:
        raise InvalidPhone("Phone number %(value)s cannot be read; use +998 and 9 digits",
                           field="phone", value=raw) from None
    if number.country_code != UZ_COUNTRY_CODE:
        raise InvalidPhone("Phone number must be an Uzbek number (+998)", field="phone")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("Phone number %(value)s is not a valid Uzbek number", field="phone",
                           value=raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class IdentityDocument:
    series: str
    number: str

    def __str__(self) -> str:
        return f"{self.series}{self.number}"


def latin_lookalikes(text: str) -> str:
    """Upper-case ``text`` with Cyrillic look-alike letters replaced by their Latin twins."""
    return (text or "").upper().translate(CYRILLIC_LOOKALIKES)


def parse_document(text: str) -> IdentityDocument:
    """Passport or ID card: series of 2 Latin letters then 7 digits, e.g. AA1234567."""
    compact = latin_lookalikes(re.sub(r"[\s-]", "", text or ""))
    match = DOCUMENT_PATTERN.match(compact)
    if not match:
        raise InvalidDocument(
            "Identity document must be 2 Latin letters and 7 digits, e.g. AA1234567",
            field="document")
    return IdentityDocument(series=match.group(1), number=match.group(2))


def new_ulid() -> str:
    return str(ULID())


# What ULID.from_str accepts (Crockford base32, either case, first digit within 48-bit time),
# as one regular expression: checked for every event received, so 20x cheaper matters.
ULID_PATTERN = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)


def is_ulid(text: str) -> bool:
    return isinstance(text, str) and ULID_PATTERN.fullmatch(text) is not None


# A paper prescription pad's serial, as printed (TAS-000123): series letters, an optional
# dash, the number. Node and hub read and write it alike.
PAD_SERIAL_PATTERN = re.compile(r"^([A-Z]{2,6})-?(\d{1,9})$")
MAX_PAD_SERIAL = 999_999_999  # nine digits, the most the pattern accepts


def read_pad_serial(text: str | None) -> tuple[str, int] | None:
    """(series, number) of a pad serial such as TAS-000123, or None if it is not one."""
    match = PAD_SERIAL_PATTERN.match(str(text or "").strip().upper())
    return (match.group(1), int(match.group(2))) if match else None


def format_pad_serial(series: str, number: int) -> str:
    return f"{series}-{number:06d}"
