"""PINFL, phone, identity document and ULID parsing: each wrong part named."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from sync_protocol.errors import InvalidDocument, InvalidPhone, InvalidPinfl
from sync_protocol.identifiers import (
    is_ulid,
    make_pinfl,
    new_ulid,
    parse_document,
    parse_phone,
    parse_pinfl,
    pinfl_check_digit,
)

VALID = make_pinfl(date(1985, 3, 14), "male", "261", "101")


def with_check(first13: str) -> str:
    return first13 + str(pinfl_check_digit(first13))


def test_valid_pinfl_gives_birth_date_and_sex():
    parsed = parse_pinfl(VALID)
    assert parsed.digits == VALID
    assert parsed.birth_date == date(1985, 3, 14)
    assert parsed.sex == "male"
    assert (parsed.district, parsed.serial) == ("261", "101")


def test_check_digit_uses_weights_7_3_1():
    # 3*7+1*3+4*1+0*7+3*3+8*1+5*7+2*3+6*1+1*7+1*3+0*1+1*7 = 109 -> 9
    assert pinfl_check_digit("3140385261101") == 9


@pytest.mark.parametrize(("text", "part"), [
    ("3140385261101", "length"),
    ("314038526110166", "length"),
    ("31403852611O16", "digits"),
    (with_check("7140385261101"), "century"),
    (with_check("0140385261101"), "century"),
    (with_check("3310285261101"), "birth_date"),
    (with_check("3141385261101"), "birth_date"),
    (with_check("3140385000101"), "district"),
    (with_check("3140385261000"), "serial"),
    (VALID[:13] + str((int(VALID[13]) + 1) % 10), "check_digit"),
])
def test_each_wrong_part_is_named(text, part):
    with pytest.raises(InvalidPinfl) as caught:
        parse_pinfl(text)
    assert caught.value.part == part
    assert caught.value.code == f"invalid_pinfl_{part}"
    assert caught.value.field == "pinfl"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("first", "century", "sex"), [
    (1, 1800, "male"), (2, 1800, "female"), (3, 1900, "male"), (4, 1900, "female"),
    (5, 2000, "male"), (6, 2000, "female")])
def test_century_and_sex_digit(first, century, sex):
    parsed = parse_pinfl(with_check(f"{first}010199123456"[:13]))
    assert parsed.birth_date.year == century + 99
    assert parsed.sex == sex


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)),
       st.sampled_from(["male", "female"]))
def test_made_pinfls_parse_back(born, sex):
    parsed = parse_pinfl(make_pinfl(born, sex))
    assert (parsed.birth_date, parsed.sex) == (born, sex)


@given(st.text(max_size=30))
def test_pinfl_parser_raises_only_invalid_pinfl(text):
    try:
        parse_pinfl(text)
    except InvalidPinfl:
        pass


@pytest.mark.parametrize(("text", "e164"), [
    ("+998 90 123 45 67", "+998901234567"),
    ("998901234567", "+998901234567"),
    ("90 123-45-67", "+998901234567"),
    ("+998712345678", "+998712345678"),
])
def test_uzbek_phone_is_stored_e164(text, e164):
    assert parse_phone(text) == e164


@pytest.mark.parametrize("text", ["", "12345", "+7 912 345 67 89", "+998 12", "phone"])
def test_bad_phone_is_refused(text):
    with pytest.raises(InvalidPhone) as caught:
        parse_phone(text)
    assert caught.value.field == "phone"


@pytest.mark.parametrize(("text", "normalised"), [("AA1234567", "AA1234567"),
                                                  ("ab 1234567", "AB1234567")])
def test_document(text, normalised):
    assert str(parse_document(text)) == normalised


@pytest.mark.parametrize("text", ["A1234567", "AA123456", "AA12345678", "ФА1234567", "1234567AA"])
def test_bad_document_is_refused(text):
    with pytest.raises(InvalidDocument):
        parse_document(text)


def test_ulids_are_unique_and_recognised():
    ids = {new_ulid() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_ulid(i) for i in ids)
    assert not is_ulid("not-a-ulid")


@given(st.one_of(
    st.from_regex(r"[0-9A-Za-z]{26}", fullmatch=True),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_ ",
            min_size=24, max_size=28)))
def test_is_ulid_agrees_with_the_ulid_library(text):
    try:
        ULID.from_str(text)
        expected = True
    except ValueError:
        expected = False
    assert is_ulid(text) is expected


def test_is_ulid_refuses_what_is_not_text():
    assert not is_ulid(None) and not is_ulid(12345678901234567890123456)


@pytest.mark.parametrize("typed", ["АВ1112233", "ав 111-2233", "AВ1112233"])
def test_cyrillic_lookalike_series_is_read_as_latin(typed):
    assert str(parse_document(typed)) == "AB1112233"


def test_cyrillic_letters_without_latin_twin_are_refused():
    with pytest.raises(InvalidDocument):
        parse_document("ГД1112233")
