"""The machine-readable zone (ICAO 9303) of Uzbek ID cards (TD1) and passports (TD3).

MRZ readers at desks and counters type the zone like a keyboard. We read the document number
and the PINFL from it, with every check digit verified. Our own small parser: the PyPI ``mrz``
package is GPLv3, which this Apache-2.0 project cannot ship.

A reader typing while the Russian layout is active sends the same keys but the computer turns
them into Cyrillic letters (the key of "D" gives "В", the filler "<" gives "Б"): such text is
turned back key by key before parsing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from .errors import InvalidIdentifier
from .identifiers import parse_document, parse_pinfl
from .timeutil import local_date, utc_now

log = logging.getLogger(__name__)

TD1_LINE, TD1_LINES = 30, 3  # ID card: 3 lines of 30 characters
TD3_LINE, TD3_LINES = 44, 2  # passport: 2 lines of 44 characters
MRZ_LENGTHS = {TD1_LINE * TD1_LINES: "TD1", TD3_LINE * TD3_LINES: "TD3"}
# The longest text a form accepts as an MRZ: two or three lines with their line breaks.
MAX_MRZ_TEXT = 120
CHECK_WEIGHTS = (7, 3, 1)
FILLER = "<"
# The Russian (ЙЦУКЕН) layout over the Latin (QWERTY) keys an MRZ uses; "<" is Shift+comma.
_RUSSIAN_KEYS = "ЙЦУКЕНГШЩЗФЫВАПРОЛДЯЧСМИТЬБ"
_LATIN_KEYS = "QWERTYUIOPASDFGHJKLZXCVBNM<"
RUSSIAN_LAYOUT_TO_LATIN = str.maketrans(_RUSSIAN_KEYS, _LATIN_KEYS)
MRZ_CHARACTERS = re.compile(r"^[A-Z0-9<]+$")


class InvalidMrz(InvalidIdentifier):
    code = "invalid_mrz"

    def __init__(self, message: str, *, part: str, **params: Any) -> None:
        self.part = part  # length, characters, document_number, birth_date, expiry, pinfl, ...
        super().__init__(message, field="mrz", code=f"invalid_mrz_{part}", **params)


@dataclass(frozen=True)
class MrzData:
    kind: str  # "TD1" (ID card) or "TD3" (passport)
    document: str  # series and number, e.g. AA1234567
    pinfl: str | None  # Uzbek documents carry it; foreign ones may not
    birth_date: date | None
    sex: str | None  # "male", "female" or None when not given
    nationality: str
    surname: str
    given_names: str


def check_digit(text: str) -> int:
    """ICAO 9303 check digit: 0-9 as themselves, A-Z as 10-35, the filler as 0; weights 7,3,1."""
    total = 0
    for i, char in enumerate(text):
        value = int(char) if char.isdigit() else 0 if char == FILLER else ord(char) - 55
        total += value * CHECK_WEIGHTS[i % 3]
    return total % 10


def looks_like_mrz(text: str) -> bool:
    """True when ``text`` has the length of a TD1 or TD3 zone once line breaks are removed."""
    return len(_compact(text)) in MRZ_LENGTHS


def _compact(text: str) -> str:
    compact = re.sub(r"\s", "", text or "").upper()
    return compact.translate(RUSSIAN_LAYOUT_TO_LATIN)


def _wrong(part: str, message: str) -> InvalidMrz:
    return InvalidMrz(message, part=part)


def _checked(field: str, digit: str, error: InvalidMrz) -> str:
    if not digit.isdigit() or int(digit) != check_digit(field):
        raise InvalidMrz(error.message, part=error.part)  # a fresh one: no shared traceback
    return field


NUMBER_WRONG = _wrong("document_number", "The MRZ check digit of the document number is"
                      " wrong; scan the document again")
BIRTH_WRONG = _wrong("birth_date", "The MRZ check digit of the birth date is wrong; scan the"
                     " document again")
EXPIRY_WRONG = _wrong("expiry", "The MRZ check digit of the expiry date is wrong; scan the"
                      " document again")
PERSONAL_WRONG = _wrong("personal_number", "The MRZ check digit of the personal number is"
                        " wrong; scan the document again")
COMPOSITE_WRONG = _wrong("composite", "The MRZ's overall check digit is wrong; scan the"
                         " document again")


def _birth(text: str) -> date | None:
    if not text.isdigit():
        return None
    year, month, day = int(text[:2]), int(text[2:4]), int(text[4:])
    # YYMMDD: a birth year is never in the future, so 30 means 1930 and 05 means 2005.
    century = 2000 if 2000 + year <= local_date(utc_now()).year else 1900
    try:
        return date(century + year, month, day)
    except ValueError:
        return None


def _names(text: str) -> tuple[str, str]:
    surname, _, given = text.partition(FILLER * 2)
    return surname.replace(FILLER, " ").strip(), given.replace(FILLER, " ").strip()


def _pinfl(text: str) -> str | None:
    digits = text.replace(FILLER, "")
    if not digits:
        return None
    try:
        return parse_pinfl(digits).digits
    except InvalidIdentifier as e:
        # The PINFL's own message says which part is wrong (and is translated as such).
        raise InvalidMrz(e.message, part="pinfl", **e.params) from None


def _document(text: str) -> str:
    try:
        return str(parse_document(text.replace(FILLER, "")))
    except InvalidIdentifier:
        raise InvalidMrz("The document number in the MRZ is not a passport or ID card number",
                         part="document_number") from None


def parse_mrz(text: str) -> MrzData:
    """Read a TD1 or TD3 zone typed by a reader (line breaks optional); check digits verified."""
    compact = _compact(text)
    kind = MRZ_LENGTHS.get(len(compact))
    if kind is None:
        raise InvalidMrz("An MRZ has 3 lines of 30 or 2 lines of 44 characters, got"
                         " %(count)s characters", part="length", count=len(compact))
    if not MRZ_CHARACTERS.match(compact):
        raise InvalidMrz("The MRZ may contain only letters, digits and <", part="characters")
    return _td1(compact) if kind == "TD1" else _td3(compact)


def _td1(mrz: str) -> MrzData:
    one, two, three = mrz[:30], mrz[30:60], mrz[60:]
    number = _checked(one[5:14], one[14], NUMBER_WRONG)
    born = _checked(two[0:6], two[6], BIRTH_WRONG)
    _checked(two[8:14], two[14], EXPIRY_WRONG)
    _checked(one[5:30] + two[0:7] + two[8:15] + two[18:29], two[29], COMPOSITE_WRONG)
    surname, given = _names(three)
    return MrzData("TD1", _document(number), _pinfl(one[15:30]), _birth(born),
                   _sex(two[7]), two[15:18].replace(FILLER, ""), surname, given)


def _td3(mrz: str) -> MrzData:
    one, two = mrz[:44], mrz[44:]
    number = _checked(two[0:9], two[9], NUMBER_WRONG)
    born = _checked(two[13:19], two[19], BIRTH_WRONG)
    _checked(two[21:27], two[27], EXPIRY_WRONG)
    personal = two[28:42]
    # A blank personal number may carry "<" or 0 as its check digit (ICAO 9303-4, 4.2.2.2).
    if personal.strip(FILLER) or two[42] not in (FILLER, "0"):
        _checked(personal, two[42], PERSONAL_WRONG)
    _checked(two[0:10] + two[13:20] + two[21:43], two[43], COMPOSITE_WRONG)
    surname, given = _names(one[5:])
    return MrzData("TD3", _document(number), _pinfl(personal), _birth(born),
                   _sex(two[20]), two[10:13].replace(FILLER, ""), surname, given)


def _sex(char: str) -> str | None:
    return {"M": "male", "F": "female"}.get(char)
