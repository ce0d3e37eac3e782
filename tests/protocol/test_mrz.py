"""ID card (TD1) and passport (TD3) machine-readable zones: document number and PINFL read,
every check digit verified, Cyrillic-layout garbling undone."""

from datetime import date

import pytest
from helpers.mrz import PINFL, garble, td1, td3

from sync_protocol.mrz import InvalidMrz, check_digit, looks_like_mrz, parse_mrz


def test_check_digit_matches_icao_example():
    # ICAO 9303 part 3 example: document number L898902C3 has check digit 6.
    assert check_digit("L898902C3") == 6
    assert check_digit("740812") == 2


@pytest.mark.parametrize("make,kind", [(td1, "TD1"), (td3, "TD3")])
def test_reads_document_and_pinfl(make, kind):
    data = parse_mrz(make())
    assert data.kind == kind
    assert data.pinfl == PINFL
    assert data.document == ("AD1234567" if kind == "TD1" else "FA7654321")
    assert data.birth_date == date(1990, 5, 17)
    assert data.sex == "female"
    assert (data.surname, data.given_names) == ("KARIMOVA", "DILNOZA")


@pytest.mark.parametrize("make", [td1, td3])
def test_cyrillic_layout_garbling_is_undone(make):
    garbled = garble(make())
    assert "Б" in garbled and "<" not in garbled  # really garbled
    assert parse_mrz(garbled) == parse_mrz(make())
    assert parse_mrz(garbled.lower()).pinfl == PINFL


@pytest.mark.parametrize("make", [td1, td3])
def test_line_breaks_are_optional(make):
    assert parse_mrz(make().replace("\n", "")).pinfl == PINFL
    assert looks_like_mrz(make().replace("\n", "\r\n"))
    assert not looks_like_mrz(PINFL)


def corrupt(text: str, index: int) -> str:
    """Change the digit at ``index`` of the compact zone (line breaks kept where they were)."""
    chars = list(text)
    positions = [i for i, c in enumerate(chars) if c != "\n"]
    at = positions[index]
    chars[at] = str((int(chars[at]) + 1) % 10)
    return "".join(chars)


@pytest.mark.parametrize("make,index,part", [
    (td1, 14, "document_number"),  # check digit of the number
    (td1, 8, "document_number"),  # a digit of the number itself
    (td1, 36, "birth_date"),
    (td1, 44, "expiry"),
    (td1, 59, "composite"),
    (td1, 18, "composite"),  # a PINFL digit: only the composite check covers TD1's optional data
    (td3, 44 + 9, "document_number"),
    (td3, 44 + 19, "birth_date"),
    (td3, 44 + 27, "expiry"),
    (td3, 44 + 30, "personal_number"),
    (td3, 44 + 43, "composite"),
])
def test_wrong_check_digit_is_refused(make, index, part):
    with pytest.raises(InvalidMrz) as caught:
        parse_mrz(corrupt(make(), index))
    assert caught.value.code == f"invalid_mrz_{part}"
    assert caught.value.field == "mrz"


def test_wrong_length_and_characters_are_refused():
    with pytest.raises(InvalidMrz, match="got 89 characters"):
        parse_mrz(td1()[:-1])
    with pytest.raises(InvalidMrz) as caught:
        parse_mrz(td1().replace("<", "#"))
    assert caught.value.code == "invalid_mrz_characters"


def test_invalid_pinfl_in_zone_is_named():
    bad = PINFL[:-1] + str((int(PINFL[-1]) + 1) % 10)
    with pytest.raises(InvalidMrz) as caught:
        parse_mrz(td3(pinfl=bad))
    assert caught.value.code == "invalid_mrz_pinfl"


def test_foreign_passport_without_personal_number():
    data = parse_mrz(td3(pinfl=""))
    assert data.pinfl is None and data.document == "FA7654321"
