"""Prescribing rules: item checks, refusals, the validity window, and the paper-path rule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_node.catalogue import Catalogue
from edge_node.prescribing_rules import (
    MAX_ITEMS_PER_PRESCRIPTION,
    ItemRequest,
    PrescriptionRuleError,
    check_prescription,
    dispense_rule_for_paper,
    max_validity_days,
    requires_e_prescription,
)
from sync_protocol.errors import ProtocolError

CATALOGUE = Catalogue.load()
TASHKENT = ZoneInfo("Asia/Tashkent")
ISSUED = datetime(2026, 3, 2, 9, 30, tzinfo=TASHKENT)


def item(inn="amoxicillin", form="capsule", strength="500 mg", quantity=21,
         dosage="1 capsule 3 times a day for 7 days", **kw) -> ItemRequest:
    return ItemRequest(inn, form, strength, quantity, dosage, **kw)


AMLODIPINE = dict(inn="amlodipine", form="tablet", strength="5 mg", quantity=30,
                  dosage="1 tablet in the morning")
METFORMIN = dict(inn="metformin", form="tablet", strength="850 mg", quantity=60,
                 dosage="1 tablet twice a day with meals")
LEVOTHYROXINE = dict(inn="levothyroxine", form="tablet", strength="50 mcg", quantity=60,
                     dosage="1 tablet before breakfast")


# --- accepted prescriptions -------------------------------------------------------------------

def test_an_antibiotic_is_valid_for_ten_days_from_issue():
    plan = check_prescription([item()], CATALOGUE, False, ISSUED)
    assert plan.not_before == datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
    assert plan.not_before.tzinfo is UTC
    assert plan.expires_at == plan.not_before + timedelta(days=10)
    assert (plan.validity_days, plan.limited_by, plan.requires_e_prescription) == (
        10, "amoxicillin", True)
    (planned,) = plan.items
    assert (planned.inn, planned.form, planned.strength, planned.unit, planned.atc) == (
        "amoxicillin", "capsule", "500 mg", "capsule", "J01CA04")


def test_item_spelling_is_taken_from_the_catalogue():
    plan = check_prescription([item(inn=" Amoxicillin", form="Capsule", strength="500MG",
                                    dosage="  1 capsule 3 times a day  ")], CATALOGUE, False,
                              ISSUED)
    planned = plan.items[0]
    assert (planned.inn, planned.form, planned.strength, planned.dosage) == (
        "amoxicillin", "capsule", "500 mg", "1 capsule 3 times a day")


@pytest.mark.parametrize("fields, chronic, days", [
    (AMLODIPINE, False, 30),
    (AMLODIPINE, True, 90),
    (LEVOTHYROXINE, False, 30),
    (LEVOTHYROXINE, True, 60),
    (dict(inn="diazepam", form="tablet", strength="5 mg", quantity=10, dosage="1 at night"),
     False, 15),
    (dict(inn="diazepam", form="tablet", strength="5 mg", quantity=10, dosage="1 at night"),
     True, 15),
    (dict(inn="paracetamol", form="tablet", strength="500 mg", quantity=10, dosage="as needed"),
     True, 30),
])
def test_validity_depends_on_drug_and_chronic_status(fields, chronic, days):
    plan = check_prescription([ItemRequest(**fields)], CATALOGUE, chronic, ISSUED)
    assert plan.validity_days == days
    assert plan.expires_at - plan.not_before == timedelta(days=days)


@pytest.mark.parametrize("others, days, limited_by", [
    ([LEVOTHYROXINE], 60, "levothyroxine"),
    ([METFORMIN], 90, "amlodipine"),
    ([dict(inn="amoxicillin", form="capsule", strength="500 mg", quantity=21, dosage="tid")],
     10, "amoxicillin"),
])
def test_a_multi_item_prescription_takes_the_shortest_window(others, days, limited_by):
    items = [ItemRequest(**AMLODIPINE)] + [ItemRequest(**o) for o in others]
    plan = check_prescription(items, CATALOGUE, True, ISSUED)
    assert (plan.validity_days, plan.limited_by) == (days, limited_by)


def test_the_doctor_may_choose_a_shorter_window():
    plan = check_prescription([ItemRequest(**AMLODIPINE)], CATALOGUE, True, ISSUED,
                              validity_days=45)
    assert (plan.validity_days, plan.max_validity_days) == (45, 90)
    assert plan.expires_at == plan.not_before + timedelta(days=45)


def test_chronic_repeats_inside_the_window_are_accepted():
    plan = check_prescription([ItemRequest(**METFORMIN, repeats=2, min_days_between_fills=30)],
                              CATALOGUE, True, ISSUED)
    assert (plan.items[0].repeats, plan.items[0].min_days_between_fills) == (2, 30)


def test_five_items_are_accepted():
    inns = ["amlodipine", "metformin", "atorvastatin", "bisoprolol", "losartan"]
    strengths = ["5 mg", "850 mg", "20 mg", "5 mg", "50 mg"]
    items = [item(inn=i, form="tablet", strength=s, quantity=30, dosage="1 daily")
             for i, s in zip(inns, strengths, strict=True)]
    assert len(check_prescription(items, CATALOGUE, True, ISSUED).items) == 5


# --- refusals ---------------------------------------------------------------------------------

def test_six_items_are_refused():
    inns = ["amlodipine", "metformin", "atorvastatin", "bisoprolol", "losartan", "enalapril"]
    strengths = ["5 mg", "850 mg", "20 mg", "5 mg", "50 mg", "10 mg"]
    items = [item(inn=i, form="tablet", strength=s, quantity=30, dosage="1 daily")
             for i, s in zip(inns, strengths, strict=True)]
    assert len(items) == MAX_ITEMS_PER_PRESCRIPTION + 1
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription(items, CATALOGUE, True, ISSUED)
    assert (caught.value.field, caught.value.code) == ("items", "too_many_items")
    assert caught.value.params == {"max": 5, "count": 6}


@pytest.mark.parametrize("inn, form, strength, code", [
    ("morphine", "solution for injection", "10 mg/ml", "narcotic_not_e_prescribable"),
    ("fentanyl", "transdermal patch", "25 mcg/h", "narcotic_not_e_prescribable"),
    ("ketamine", "solution for injection", "50 mg/ml", "narcotic_not_e_prescribable"),
    ("propofol", "emulsion for injection", "10 mg/ml", "anaesthetic_not_e_prescribable"),
    ("morphine", "no such form", "1 mg", "narcotic_not_e_prescribable"),
])
def test_narcotics_and_anaesthetics_are_refused(inn, form, strength, code):
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription([item(), item(inn=inn, form=form, strength=strength, quantity=1)],
                           CATALOGUE, False, ISSUED)
    assert (caught.value.field, caught.value.code) == ("items[1].inn", code)
    assert "cannot be prescribed electronically" in caught.value.text


def _amlo(**kw):
    return ItemRequest(**{**AMLODIPINE, **kw})


# name: (items, chronic, field, code)
VIOLATIONS = {
    "no items": ([], False, "items", "no_items"),
    "unknown drug": ([item(inn="aspirine")], False, "items[0].inn", "unknown_drug"),
    "duplicate INN": ([item(), item(inn="AMOXICILLIN", form="dispersible tablet")], False,
                      "items[1].inn", "duplicate_inn"),
    "unknown form": ([item(form="syrup")], False, "items[0].form", "unknown_form"),
    "unknown strength": ([item(strength="5 mg")], False, "items[0].strength",
                         "unknown_strength"),
    "zero quantity": ([item(quantity=0)], False, "items[0].quantity", "quantity_not_positive"),
    "negative quantity": ([item(quantity=-3)], False, "items[0].quantity",
                          "quantity_not_positive"),
    "huge quantity": ([item(quantity=361)], False, "items[0].quantity", "quantity_too_large"),
    "fractional quantity": ([item(quantity=2.5)], False, "items[0].quantity",
                            "quantity_invalid"),
    "boolean quantity": ([item(quantity=True)], False, "items[0].quantity", "quantity_invalid"),
    "quantity as text": ([item(quantity="21")], False, "items[0].quantity", "quantity_invalid"),
    "bad third item": ([item(), _amlo(), item(inn="metformin", form="tablet",
                                              strength="500 mg", quantity=0)],
                       False, "items[2].quantity", "quantity_not_positive"),
    "blank dosage": ([item(dosage="   ")], False, "items[0].dosage", "dosage_missing"),
    "long dosage": ([item(dosage="x" * 201)], False, "items[0].dosage", "dosage_too_long"),
    "two-line dosage": ([item(dosage="1 capsule\n3 times")], False, "items[0].dosage",
                        "dosage_invalid"),
    "negative repeats": ([_amlo(repeats=-1)], True, "items[0].repeats", "repeats_invalid"),
    "too many repeats": ([_amlo(repeats=13, min_days_between_fills=7)], True,
                         "items[0].repeats", "repeats_too_many"),
    "repeats for a non-chronic patient": ([_amlo(repeats=1, min_days_between_fills=30)], False,
                                          "items[0].repeats", "repeats_need_chronic_patient"),
    "repeats of an antibiotic": ([item(repeats=1, min_days_between_fills=7)], True,
                                 "items[0].repeats", "repeats_not_chronic_eligible"),
    "repeats without interval": ([_amlo(repeats=1)], True, "items[0].min_days_between_fills",
                                 "interval_missing"),
    "interval too short": ([_amlo(repeats=2, min_days_between_fills=3)], True,
                           "items[0].min_days_between_fills", "interval_too_short"),
    "interval as text": ([_amlo(repeats=2, min_days_between_fills="30")], True,
                         "items[0].min_days_between_fills", "interval_invalid"),
    "interval without repeats": ([_amlo(min_days_between_fills=30)], True,
                                 "items[0].min_days_between_fills", "interval_without_repeats"),
    "repeats past expiry": ([_amlo(repeats=3, min_days_between_fills=30)], True,
                            "items[0].repeats", "repeats_exceed_validity"),
    "repeats past a short window": ([_amlo(repeats=1, min_days_between_fills=30),
                                     item(inn="levothyroxine", form="tablet", strength="50 mcg",
                                          repeats=1, min_days_between_fills=60)],
                                    True, "items[1].repeats", "repeats_exceed_validity"),
}


@pytest.mark.parametrize("items, chronic, field, code", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_every_violation_names_its_field_and_changes_nothing(items, chronic, field, code):
    items_before = copy.deepcopy(items)
    catalogue_before = list(CATALOGUE)
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription(items, CATALOGUE, chronic, ISSUED)
    error = caught.value
    assert isinstance(error, ProtocolError)
    assert (error.field, error.code) == (field, code)
    assert "%(" not in error.text
    assert items == items_before
    assert list(CATALOGUE) == catalogue_before


@pytest.mark.parametrize("requested, code", [
    (91, "validity_exceeds_maximum"), (0, "validity_invalid"), (-5, "validity_invalid"),
    (30.5, "validity_invalid"), (True, "validity_invalid"),
])
def test_a_requested_window_outside_the_rules_is_refused(requested, code):
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription([_amlo()], CATALOGUE, True, ISSUED, validity_days=requested)
    assert (caught.value.field, caught.value.code) == ("validity_days", code)


def test_an_antibiotic_window_cannot_be_stretched_for_a_chronic_patient():
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription([item()], CATALOGUE, True, ISSUED, validity_days=11)
    assert caught.value.code == "validity_exceeds_maximum"
    assert caught.value.params == {"max": 10, "inn": "amoxicillin"}


def test_a_naive_issue_time_is_refused():
    with pytest.raises(PrescriptionRuleError) as caught:
        check_prescription([item()], CATALOGUE, False, datetime(2026, 3, 2, 9, 30))
    assert (caught.value.field, caught.value.code) == ("issued_at", "issued_at_naive")


# --- the validity property --------------------------------------------------------------------

PRESCRIBABLE = sorted((d for d in CATALOGUE if d.e_prescribable), key=lambda d: d.inn)


@st.composite
def prescriptions(draw):
    drugs = draw(st.lists(st.sampled_from(PRESCRIBABLE), min_size=1,
                          max_size=MAX_ITEMS_PER_PRESCRIPTION, unique_by=lambda d: d.inn))
    items = []
    for drug in drugs:
        form = draw(st.sampled_from(drug.forms))
        items.append(ItemRequest(drug.inn, form.form, draw(st.sampled_from(form.strengths)),
                                 draw(st.integers(1, 360)), "as directed"))
    return drugs, items


def expected_cap(drug, chronic: bool) -> int:
    # Written out from the data on purpose: the property must not reuse the code under test.
    if chronic and drug.chronic_max_days is not None:
        return drug.chronic_max_days
    return drug.default_validity_days


@given(prescriptions(), st.booleans(),
       st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31),
                    timezones=st.sampled_from([UTC, TASHKENT])),
       st.one_of(st.none(), st.integers(1, 120)))
def test_validity_never_exceeds_the_catalogue_maximum(prescription, chronic, issued, requested):
    drugs, items = prescription
    cap = min(expected_cap(d, chronic) for d in drugs)
    if requested is not None and requested > cap:
        with pytest.raises(PrescriptionRuleError):
            check_prescription(items, CATALOGUE, chronic, issued, validity_days=requested)
        return
    plan = check_prescription(items, CATALOGUE, chronic, issued, validity_days=requested)
    assert plan.max_validity_days == cap
    assert plan.validity_days == (cap if requested is None else requested)
    for drug in drugs:
        assert plan.validity_days <= (drug.chronic_max_days or drug.default_validity_days)
        if not chronic:
            assert plan.validity_days <= drug.default_validity_days
    assert plan.not_before == issued and plan.not_before.tzinfo is UTC
    assert plan.expires_at - plan.not_before == timedelta(days=plan.validity_days)


# --- helpers for other paths ------------------------------------------------------------------

@pytest.mark.parametrize("inn, expected", [
    ("amoxicillin", True), ("ceftriaxone", True), ("prednisolone", True),
    ("insulin glargine", True), ("estradiol", True), ("diazepam", True), ("pregabalin", True),
    ("amlodipine", False), ("paracetamol", False), ("morphine", False), ("propofol", False),
])
def test_requires_e_prescription(inn, expected):
    assert requires_e_prescription(CATALOGUE.get(inn)) is expected


@pytest.mark.parametrize("inn, code, needs, forbidden, paper", [
    ("paracetamol", "no_prescription_needed", False, False, True),
    ("amlodipine", "paper_prescription_ok", True, False, True),
    ("amoxicillin", "e_prescription_required", True, True, True),
    ("levothyroxine", "e_prescription_required", True, True, True),
    ("morphine", "special_form_only", True, True, False),
    ("propofol", "special_form_only", True, True, False),
])
def test_dispense_rule_for_paper(inn, code, needs, forbidden, paper):
    rule = dispense_rule_for_paper(CATALOGUE.get(inn))
    assert (rule.inn, rule.code, rule.needs_prescription, rule.forbidden_without_e_prescription,
            rule.paper_path_allowed) == (inn, code, needs, forbidden, paper)
    assert inn in rule.text and "%(" not in rule.text


def test_max_validity_of_a_narcotic_is_refused():
    with pytest.raises(PrescriptionRuleError) as caught:
        max_validity_days(CATALOGUE.get("morphine"), chronic=True)
    assert caught.value.code == "narcotic_not_e_prescribable"
