"""The drug catalogue: shipped data, look-ups, autocomplete, and refusal of broken data."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from edge_node.catalogue import (
    Catalogue,
    CatalogueDataError,
    CatalogueError,
    UnknownDrug,
    UnknownForm,
    UnknownStrength,
)
from sync_protocol.errors import ProtocolError

SHIPPED = resources.files("sync_protocol") / "data" / "drugs.json"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def shipped_data() -> dict:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


def small_data(*inns: str) -> dict:
    """A valid catalogue of a few shipped entries, safe to break."""
    data = shipped_data()
    data["drugs"] = {inn: copy.deepcopy(data["drugs"][inn])
                     for inn in inns or ("amoxicillin", "morphine", "amlodipine")}
    return data


# --- the shipped data -------------------------------------------------------------------------

def test_shipped_catalogue_has_version_source_and_enough_drugs(catalogue):
    assert catalogue.version == shipped_data()["version"]
    assert "ATC" in catalogue.source
    assert len(catalogue) >= 60
    assert len({d.inn for d in catalogue}) == len(catalogue)


@pytest.mark.parametrize("group, minimum", [
    ("antibacterial", 12), ("hormonal", 8), ("psychotropic_or_potent", 6), ("otc", 8)])
def test_shipped_counts_per_group(catalogue, group, minimum):
    assert sum(getattr(d, group) for d in catalogue) >= minimum


def test_shipped_narcotics_and_anaesthetics_are_not_e_prescribable(catalogue):
    refused = [d for d in catalogue if d.narcotic or d.anaesthetic]
    assert len(refused) >= 3
    assert {"morphine", "fentanyl", "ketamine"} <= {d.inn for d in refused}
    assert all(not d.e_prescribable and not d.requires_e_prescription for d in refused)
    assert all(d.e_prescribable for d in catalogue if not (d.narcotic or d.anaesthetic))


def test_shipped_chronic_drugs_cover_the_chronic_conditions(catalogue):
    chronic = [d for d in catalogue if d.chronic_max_days is not None]
    assert len(chronic) >= 15
    # cardiovascular, diabetes, thyroid, asthma/COPD, epilepsy
    for prefix in ("C", "A10", "H03", "R03", "N03"):
        assert any(d.atc.startswith(prefix) for d in chronic), prefix
    assert {d.chronic_max_days for d in chronic} == {60, 90}
    for inn in ("amlodipine", "metformin", "atorvastatin"):
        assert next(d for d in chronic if d.inn == inn).chronic_max_days == 90


@pytest.mark.parametrize("inn, atc", [
    ("amoxicillin", "J01CA04"), ("metformin", "A10BA02"), ("levothyroxine", "H03AA01"),
    ("prednisolone", "H02AB06"), ("diazepam", "N05BA01"), ("morphine", "N02AA01"),
    ("atorvastatin", "C10AA05"), ("amlodipine", "C08CA01"), ("salbutamol", "R03AC02"),
    ("ceftriaxone", "J01DD04"), ("amoxicillin+clavulanic acid", "J01CR02"),
    ("paracetamol", "N02BE01"), ("ibuprofen", "M01AE01"), ("insulin glargine", "A10AE04"),
])
def test_well_known_atc_codes(catalogue, inn, atc):
    assert catalogue.get(inn).atc == atc


@pytest.mark.parametrize("inn, form, atc", [
    ("acetylsalicylic acid", "gastro-resistant tablet", "B01AC06"),
    ("acetylsalicylic acid", "tablet", "N02BA01"),
    ("fentanyl", "solution for injection", "N01AH01"),
    ("insulin human", "suspension for injection", "A10AC01"),
    ("amoxicillin", "capsule", "J01CA04"),
])
def test_a_form_may_carry_its_own_atc_code(catalogue, inn, form, atc):
    assert catalogue.get(inn).form(form).atc == atc


def test_shipped_flags_agree_with_atc_groups(catalogue):
    for drug in catalogue:
        assert drug.antibacterial == drug.atc.startswith("J01"), drug.inn
        systemic_hormone = drug.atc[:1] == "H" or drug.atc[:3] == "G03" or drug.atc[:4] == "A10A"
        assert drug.hormonal == systemic_hormone, drug.inn
        if drug.antibacterial:
            assert drug.requires_e_prescription and drug.default_validity_days == 10
        if drug.hormonal or drug.psychotropic_or_potent:
            assert drug.requires_e_prescription and drug.chronic_max_days in (None, 60)


@pytest.mark.parametrize("inn", ["paracetamol", "ibuprofen", "loratadine"])
def test_common_otc_drugs_need_no_e_prescription(catalogue, inn):
    drug = catalogue.get(inn)
    assert drug.otc and not drug.requires_e_prescription


def test_every_drug_is_named_in_three_languages(catalogue):
    for drug in catalogue:
        assert drug.name("uz") and drug.name("ru") and drug.name("en")
        assert any("\u0400" <= c <= "\u04ff" for c in drug.name("ru")), drug.inn


# --- look-ups ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["amoxicillin", "Amoxicillin", "  AMOXICILLIN "])
def test_get_ignores_case_and_spacing(catalogue, text):
    assert catalogue.get(text).inn == "amoxicillin"


def test_get_normalises_combination_spacing(catalogue):
    assert catalogue.get("Amoxicillin + Clavulanic acid").inn == "amoxicillin+clavulanic acid"


@pytest.mark.parametrize("text", ["aspirine", "", 42, None])
def test_get_unknown_drug_raises_a_protocol_error_on_inn(catalogue, text):
    with pytest.raises(UnknownDrug) as caught:
        catalogue.get(text)
    assert isinstance(caught.value, ProtocolError)
    assert caught.value.field == "inn"
    assert caught.value.code == "unknown_drug"
    assert "%(" not in caught.value.text


def test_validate_form_strength_returns_catalogue_spelling(catalogue):
    presentation = catalogue.validate_form_strength("Amoxicillin", "Capsule", "500MG")
    assert (presentation.drug.inn, presentation.form.form, presentation.strength) == (
        "amoxicillin", "capsule", "500 mg")
    assert presentation.form.unit == "capsule"


def test_validate_form_strength_accepts_decimal_comma(catalogue):
    assert catalogue.validate_form_strength("alprazolam", "tablet", "0,5 mg").strength == "0.5 mg"


@pytest.mark.parametrize("inn, form, strength, error, field", [
    ("amoxicillin", "inhalation aerosol", "500 mg", UnknownForm, "form"),
    ("amoxicillin", "capsule", "750 mg", UnknownStrength, "strength"),
    ("amoxicillin", "capsule", "500 mg/5 ml", UnknownStrength, "strength"),
    ("amoxicilin", "capsule", "500 mg", UnknownDrug, "inn"),
])
def test_validate_form_strength_names_the_wrong_part(catalogue, inn, form, strength, error, field):
    with pytest.raises(error) as caught:
        catalogue.validate_form_strength(inn, form, strength)
    assert caught.value.field == field
    assert "%(" not in caught.value.text


# --- autocomplete -----------------------------------------------------------------------------

@pytest.mark.parametrize("query, lang, first", [
    ("amoks", "uz", "amoxicillin"),
    ("Seftriak", "uz", "ceftriaxone"),
    ("Faollashtirilgan ko'mir", "uz", "medicinal charcoal"),
    ("koʻmir", "uz", "medicinal charcoal"),
    ("ko‘mir", "uz", "medicinal charcoal"),
    ("Амокс", "ru", "amoxicillin"),
    ("цефтриаксон", "ru", "ceftriaxone"),
    ("ПАРАЦЕТ", "ru", "paracetamol"),
    ("анальгин", "ru", "metamizole sodium"),
    ("метформ", "ru", "metformin"),
    ("amox", "en", "amoxicillin"),
    ("LEVOTHYR", "en", "levothyroxine"),
    ("aspirin", "en", "acetylsalicylic acid"),
])
def test_search_in_uzbek_russian_and_english(catalogue, query, lang, first):
    results = catalogue.search(query, lang=lang)
    assert results and results[0].inn == first


def test_search_puts_prefix_matches_before_substring_matches(catalogue):
    inns = [d.inn for d in catalogue.search("prednisol", lang="en")]
    assert inns == ["prednisolone", "methylprednisolone"]


def test_search_finds_a_word_inside_a_combination(catalogue):
    assert "amoxicillin+clavulanic acid" in [d.inn for d in catalogue.search("клавулан", "ru")]


def test_search_respects_the_limit(catalogue):
    assert len(catalogue.search("a", limit=3)) == 3
    assert len(catalogue.search("in", limit=100)) <= 50


@pytest.mark.parametrize("query", ["", "   ", "zzzz", "ёжик"])
def test_search_with_nothing_to_find_returns_empty(catalogue, query):
    assert catalogue.search(query) == []


def test_search_unknown_language_is_refused(catalogue):
    with pytest.raises(CatalogueError) as caught:
        catalogue.search("amox", lang="de")
    assert caught.value.code == "unknown_language"


# --- loading ----------------------------------------------------------------------------------

def test_the_shipped_catalogue_is_loaded_once():
    assert Catalogue.load() is Catalogue.load()


def test_load_from_a_path_reads_that_file(tmp_path):
    path = tmp_path / "drugs.json"
    path.write_text(json.dumps(small_data("amoxicillin", "metformin")), encoding="utf-8")
    loaded = Catalogue.load(path)
    assert sorted(d.inn for d in loaded) == ["amoxicillin", "metformin"]
    assert "amlodipine" not in loaded


def test_duplicate_inn_in_the_file_is_refused(tmp_path):
    entry = json.dumps(shipped_data()["drugs"]["amoxicillin"], ensure_ascii=False)
    pair = f'"amoxicillin": {entry}'
    text = '{"version": "t", "source": "t", "drugs": {' + pair + ", " + pair + "}}"
    path = tmp_path / "drugs.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueDataError) as caught:
        Catalogue.load(path)
    assert caught.value.field == "amoxicillin"


@pytest.mark.parametrize("content", [None, "{not json", "[]"])
def test_unreadable_file_is_refused(tmp_path, content):
    path = tmp_path / "drugs.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogueDataError) as caught:
        Catalogue.load(path)
    assert caught.value.field == "$"


def _set(inn: str, key: str, value):
    def change(data):
        data["drugs"][inn][key] = value
    return change


def _set_form(inn: str, key: str, value):
    def change(data):
        data["drugs"][inn]["forms"][0][key] = value
    return change


def _rename(old: str, new: str):
    def change(data):
        data["drugs"][new] = data["drugs"].pop(old)
    return change


def _names(lang: str, value: str):
    def change(data):
        data["drugs"]["amoxicillin"]["names"][lang] = value
    return change


BROKEN = {
    "bad ATC shape": (_set("amoxicillin", "atc", "J01CA4"), "drugs.amoxicillin.atc"),
    "lowercase ATC": (_set("amoxicillin", "atc", "j01ca04"), "drugs.amoxicillin.atc"),
    "bad form ATC": (_set_form("amoxicillin", "atc", "X01CA04"),
                     "drugs.amoxicillin.forms[0].atc"),
    "chronic 30": (_set("amlodipine", "chronic_max_days", 30),
                   "drugs.amlodipine.chronic_max_days"),
    "chronic as text": (_set("amlodipine", "chronic_max_days", "90"),
                        "drugs.amlodipine.chronic_max_days"),
    "narcotic prescribable": (_set("morphine", "e_prescribable", True),
                              "drugs.morphine.e_prescribable"),
    "narcotic with validity": (_set("morphine", "default_validity_days", 10),
                               "drugs.morphine.e_prescribable"),
    "non-narcotic refused": (_set("amlodipine", "e_prescribable", False),
                             "drugs.amlodipine.e_prescribable"),
    "antibacterial without e-prescription": (
        _set("amoxicillin", "requires_e_prescription", False),
        "drugs.amoxicillin.requires_e_prescription"),
    "antibacterial made chronic": (_set("amoxicillin", "chronic_max_days", 90),
                                   "drugs.amoxicillin.chronic_max_days"),
    "hormonal at 90 days": (_set("levothyroxine", "chronic_max_days", 90),
                            "drugs.levothyroxine.chronic_max_days"),
    "OTC and e-prescription": (_set("amoxicillin", "otc", True), "drugs.amoxicillin.otc"),
    "flag as text": (_set("amoxicillin", "hormonal", "no"), "drugs.amoxicillin.hormonal"),
    "misspelt field": (_set("amoxicillin", "antibacterail", True),
                       "drugs.amoxicillin.antibacterail"),
    "validity over chronic max": (_set("amlodipine", "default_validity_days", 91),
                                  "drugs.amlodipine.default_validity_days"),
    "capitalised INN": (_rename("amoxicillin", "Amoxicillin"), "drugs.Amoxicillin"),
    "uz name in Cyrillic": (_names("uz", "Амоксициллин"), "drugs.amoxicillin.names.uz"),
    "ru name in Latin": (_names("ru", "Amoksitsillin"), "drugs.amoxicillin.names.ru"),
    "empty en name": (_names("en", ""), "drugs.amoxicillin.names.en"),
    "strength without space": (_set_form("amoxicillin", "strengths", ["500mg"]),
                               "drugs.amoxicillin.forms[0].strengths[0]"),
    "no strengths": (_set_form("amoxicillin", "strengths", []),
                     "drugs.amoxicillin.forms[0].strengths"),
    "unknown dosage form": (_set_form("amoxicillin", "form", "pill"),
                            "drugs.amoxicillin.forms[0].form"),
    "unknown unit": (_set_form("amoxicillin", "unit", "kg"), "drugs.amoxicillin.forms[0].unit"),
    "no forms": (_set("amoxicillin", "forms", []), "drugs.amoxicillin.forms"),
}


@pytest.mark.parametrize("change, field", BROKEN.values(), ids=BROKEN.keys())
def test_broken_data_is_refused_naming_the_field(change, field):
    data = small_data("amoxicillin", "morphine", "amlodipine", "levothyroxine")
    Catalogue.from_dict(copy.deepcopy(data))  # valid before the change
    change(data)
    with pytest.raises(CatalogueDataError) as caught:
        Catalogue.from_dict(data)
    assert caught.value.field == field
    assert caught.value.code == "catalogue_data_invalid"
    assert "%(" not in caught.value.text


@pytest.mark.parametrize("key", ["version", "source", "drugs"])
def test_catalogue_without_top_level_keys_is_refused(key):
    data = small_data()
    del data[key]
    with pytest.raises(CatalogueDataError) as caught:
        Catalogue.from_dict(data)
    assert caught.value.field == key
