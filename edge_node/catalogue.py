"""The drug catalogue: drugs keyed by INN, their forms and strengths, and the flags that drive
the prescribing rules.

The data lives in ``sync_protocol/data/drugs.json`` (the hub reads it too) so a pharmacist
can review it. It is validated on load: a broken edit fails at start-up naming the entry and
the field, never at the pharmacy counter.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync_protocol import drug_catalogue
from sync_protocol.errors import ProtocolError

logger = logging.getLogger(__name__)

__all__ = ["Catalogue", "CatalogueDataError", "CatalogueError", "Drug", "DrugForm", "Presentation",
           "UnknownDrug", "UnknownForm", "UnknownStrength", "normalize_text"]

LANGUAGES = ("uz", "ru", "en")  # Uzbek (Latin) first, Russian second, English for developers
# MoH e-prescription order: chronic patients get up to 60 days (hormonal) or 90 days (others).
ALLOWED_CHRONIC_MAX_DAYS = (60, 90)
CONTROLLED_CHRONIC_MAX_DAYS = 60  # hormonal and psychotropic/potent drugs never take 90 days
MAX_DEFAULT_VALIDITY_DAYS = 90  # no ordinary window may outlast the longest chronic one
SEARCH_MAX_LIMIT = 50  # autocomplete shows a short list; more rows means a too-short query

ATC_RE = re.compile(r"^[ABCDGHJLMNPRSV][0-9]{2}[A-Z]{2}[0-9]{2}$")  # level 5: the substance
INN_RE = re.compile(r"^[a-z][a-z0-9 +-]*[a-z0-9]$")  # lowercase English INN, "+" for combinations
_AMOUNT = r"\d+(?:\.\d+)?"
_MASS = rf"{_AMOUNT} (?:mg|g|mcg|IU)"
# "500 mg", "875 mg/125 mg", "250 mg/5 ml", "100 IU/ml", "25 mcg/125 mcg/dose", "12 mcg/h", "0.1%"
_PER = rf"(?:/(?:{_AMOUNT} )?(?:ml|dose|h))"
STRENGTH_RE = re.compile(rf"^(?:{_AMOUNT}%|{_MASS}(?:/{_MASS})*{_PER}?)$")

KNOWN_FORMS = frozenset({
    "tablet", "modified-release tablet", "gastro-resistant tablet", "chewable tablet",
    "dispersible tablet", "effervescent tablet", "sublingual tablet", "capsule",
    "oral suspension", "powder for oral suspension", "granules for oral solution",
    "granules for oral suspension", "oral solution", "oral drops", "syrup", "oral emulsion",
    "solution for injection", "powder for injection", "suspension for injection",
    "emulsion for injection", "solution for infusion", "inhalation aerosol", "inhalation powder",
    "inhalation spray", "nebuliser solution", "nebuliser suspension", "nasal spray", "eye drops",
    "sublingual spray", "transdermal patch", "suppository",
})
# What a quantity counts: tablets, bottles, pens... never milligrams.
KNOWN_UNITS = frozenset({"tablet", "capsule", "bottle", "ampoule", "vial", "pen", "inhaler",
                         "sachet", "patch", "suppository", "container"})
_FLAGS = ("antibacterial", "hormonal", "psychotropic_or_potent", "narcotic", "anaesthetic", "otc",
          "requires_e_prescription", "e_prescribable")
_DRUG_KEYS = frozenset({"names", "synonyms", "atc", "forms", "chronic_max_days",
                        "default_validity_days", *_FLAGS})
_FORM_KEYS = frozenset({"form", "unit", "strengths", "atc"})
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")
_APOSTROPHES = str.maketrans({c: "'" for c in "\u02bb\u02bc\u2018\u2019`\u00b4"})
_WORD_SPLIT_RE = re.compile(r"[\s+/()-]+")
_NO_MATCH = 3  # search ranks: 0 name prefix, 1 word prefix, 2 substring


class CatalogueError(ProtocolError):
    code = "catalogue_error"


class CatalogueDataError(CatalogueError):
    """The data file is broken; ``field`` is the JSON path of the bad value."""

    code = "catalogue_data_invalid"


class UnknownDrug(CatalogueError, LookupError):
    code = "unknown_drug"

    def __init__(self, inn: object) -> None:
        super().__init__("Unknown drug %(inn)s: prescribe by an INN from the catalogue",
                         field="inn", inn=repr(inn) if not isinstance(inn, str) else inn)


class UnknownForm(CatalogueError, LookupError):
    code = "unknown_form"


class UnknownStrength(CatalogueError, LookupError):
    code = "unknown_strength"


def normalize_text(text: str) -> str:
    """Fold text for matching: case, Cyrillic ё, Uzbek apostrophes (oʻ o' o‘), spacing."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    text = " ".join(text.translate(_APOSTROPHES).split())
    return re.sub(r"\s*\+\s*", "+", text)


def _language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise CatalogueError("Unknown language %(lang)s", field="lang", code="unknown_language",
                             lang=str(lang))
    return lang


def _strength_key(strength: str) -> str:
    # "500mg", "500 MG" and "0,5 mg" name the same strength as "500 mg" and "0.5 mg".
    return "".join(strength.split()).casefold().replace(",", ".")


@dataclass(frozen=True)
class DrugForm:
    form: str  # "tablet", "powder for oral suspension", ... (KNOWN_FORMS)
    unit: str  # what a quantity counts (KNOWN_UNITS)
    strengths: tuple[str, ...]
    atc: str  # the form's own ATC code when the data gives one, else the drug's

    def strength(self, text: str) -> str | None:
        """The catalogue's spelling of ``text``, or None when this form has no such strength."""
        key = _strength_key(text)
        return next((s for s in self.strengths if _strength_key(s) == key), None)


@dataclass(frozen=True)
class Drug:
    inn: str
    name_uz: str
    name_ru: str
    name_en: str
    atc: str
    forms: tuple[DrugForm, ...]
    antibacterial: bool
    hormonal: bool
    psychotropic_or_potent: bool
    narcotic: bool
    anaesthetic: bool
    otc: bool
    requires_e_prescription: bool
    e_prescribable: bool
    chronic_max_days: int | None
    default_validity_days: int | None
    synonyms: tuple[str, ...] = ()

    def name(self, lang: str = "uz") -> str:
        return getattr(self, f"name_{_language(lang)}")

    def form(self, name: str) -> DrugForm:
        key = normalize_text(name) if isinstance(name, str) else None
        for form in self.forms:
            if form.form == key:
                return form
        raise UnknownForm("%(inn)s has no form %(form)s; available: %(available)s",
                          field="form", inn=self.inn, form=str(name),
                          available=", ".join(f.form for f in self.forms))

    @property
    def chronic_eligible(self) -> bool:
        return self.chronic_max_days is not None


@dataclass(frozen=True)
class Presentation:
    """A validated (drug, form, strength), spelled as the catalogue spells them."""

    drug: Drug
    form: DrugForm
    strength: str


class Catalogue:
    """An immutable, validated set of drugs. Build it with ``load`` or ``from_dict``."""

    def __init__(self, drugs: dict[str, Drug], *, version: str, source: str) -> None:
        for inn, drug in drugs.items():
            if inn != drug.inn:
                raise _bad(f"drugs.{inn}", "Drug %(inn)s is filed under %(key)s", inn=drug.inn,
                           key=inn)
            _check_policy(drug, f"drugs.{inn}")
        self._drugs = dict(sorted(drugs.items()))
        self.version = version
        self.source = source
        self._index = {inn: _search_texts(d) for inn, d in self._drugs.items()}

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalogue:
        """The shipped catalogue (read once, then cached) or a fresh read of ``path``."""
        if path is None:
            return _load_shipped()
        return cls._from_file(Path(path))

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "<dict>") -> Catalogue:
        if not isinstance(data, dict):
            raise CatalogueDataError("The drug catalogue must be a JSON object", field="$")
        for key in ("version", "source"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise CatalogueDataError("The catalogue needs a %(key)s text", field=key, key=key)
        raw_drugs = data.get("drugs")
        if not isinstance(raw_drugs, dict) or not raw_drugs:
            raise CatalogueDataError("The catalogue has no drugs", field="drugs")
        drugs = {inn: _parse_drug(inn, raw) for inn, raw in raw_drugs.items()}
        catalogue = cls(drugs, version=data["version"], source=data["source"])
        logger.info("Drug catalogue %s: %s drugs from %s", catalogue.version, len(drugs), origin)
        return catalogue

    @classmethod
    def _from_file(cls, path: Path | Any) -> Catalogue:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise CatalogueDataError("Cannot read the drug catalogue %(path)s: %(reason)s",
                                     field="$", path=str(path), reason=str(e)) from e
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as e:
            raise CatalogueDataError("The drug catalogue is not valid JSON (line %(line)s): "
                                     "%(reason)s", field="$", line=e.lineno, reason=e.msg) from e
        return cls.from_dict(data, origin=str(path))

    def __len__(self) -> int:
        return len(self._drugs)

    def __iter__(self) -> Iterator[Drug]:
        return iter(self._drugs.values())

    def __contains__(self, inn: object) -> bool:
        return isinstance(inn, str) and normalize_text(inn) in self._drugs

    def get(self, inn: str) -> Drug:
        drug = self._drugs.get(normalize_text(inn)) if isinstance(inn, str) else None
        if drug is None:
            raise UnknownDrug(inn)
        return drug

    def validate_form_strength(self, inn: str, form: str, strength: str) -> Presentation:
        drug = self.get(inn)
        drug_form = drug.form(form)
        canonical = drug_form.strength(strength) if isinstance(strength, str) else None
        if canonical is None:
            raise UnknownStrength(
                "%(inn)s %(form)s does not come in %(strength)s; available: %(available)s",
                field="strength", inn=drug.inn, form=drug_form.form, strength=str(strength),
                available=", ".join(drug_form.strengths))
        return Presentation(drug, drug_form, canonical)

    def search(self, text: str, lang: str = "uz", limit: int = 10) -> list[Drug]:
        """Autocomplete over INNs, names in every language and synonyms.

        Whole-name prefix matches come first, then word-prefix, then substring matches; within
        a rank, matches in ``lang`` come before others, then the ``lang`` name's order.
        """
        _language(lang)
        query = normalize_text(text) if isinstance(text, str) else ""
        if not query or limit < 1:
            return []
        ranked = []
        for inn, texts in self._index.items():
            best = min(_match_rank(query, t, tag, lang) for tag, t in texts)
            if best[0] < _NO_MATCH:
                ranked.append((best, normalize_text(self._drugs[inn].name(lang)), inn))
        ranked.sort()
        return [self._drugs[inn] for _, _, inn in ranked[:min(limit, SEARCH_MAX_LIMIT)]]


def _match_rank(query: str, text: str, tag: str, lang: str) -> tuple[int, int]:
    if text.startswith(query):
        kind = 0
    elif any(word.startswith(query) for word in _WORD_SPLIT_RE.split(text)):
        kind = 1
    elif query in text:
        kind = 2
    else:
        return (_NO_MATCH, 0)
    return (kind, 0 if tag == lang else 1 if tag in LANGUAGES or tag == "inn" else 2)


def _search_texts(drug: Drug) -> tuple[tuple[str, str], ...]:
    texts = [("inn", drug.inn)] + [(lang, drug.name(lang)) for lang in LANGUAGES]
    texts += [("synonym", s) for s in drug.synonyms]
    return tuple((tag, normalize_text(t)) for tag, t in texts)


@functools.cache
def _load_shipped() -> Catalogue:
    return Catalogue._from_file(drug_catalogue.CATALOGUE)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CatalogueDataError("Duplicate key %(key)s in the drug catalogue", field=key,
                                     key=key)
        result[key] = value
    return result


def _bad(field: str, message: str, **params: Any) -> CatalogueDataError:
    return CatalogueDataError(message, field=field, **params)


def _parse_drug(inn: str, raw: Any) -> Drug:
    at = f"drugs.{inn}"
    if not INN_RE.match(inn) or "  " in inn:
        raise _bad(at, "INN %(inn)s must be lowercase English, '+' joining combinations", inn=inn)
    if not isinstance(raw, dict):
        raise _bad(at, "Drug %(inn)s must be an object", inn=inn)
    if missing := sorted(_DRUG_KEYS - {"synonyms"} - raw.keys()):
        raise _bad(f"{at}.{missing[0]}", "Drug %(inn)s lacks %(key)s", inn=inn, key=missing[0])
    if unknown := sorted(raw.keys() - _DRUG_KEYS):
        raise _bad(f"{at}.{unknown[0]}", "Drug %(inn)s has unknown field %(key)s", inn=inn,
                   key=unknown[0])
    flags = {}
    for flag in _FLAGS:
        if not isinstance(raw[flag], bool):
            raise _bad(f"{at}.{flag}", "%(flag)s of %(inn)s must be true or false", flag=flag,
                       inn=inn)
        flags[flag] = raw[flag]
    atc = _atc(raw["atc"], f"{at}.atc")
    names = _names(raw["names"], f"{at}.names")
    synonyms = raw.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip()
                                                 for s in synonyms):
        raise _bad(f"{at}.synonyms", "Synonyms of %(inn)s must be a list of names", inn=inn)
    forms = _forms(raw["forms"], atc, f"{at}.forms")
    chronic, validity = raw["chronic_max_days"], raw["default_validity_days"]
    if chronic is not None and (type(chronic) is not int
                                or chronic not in ALLOWED_CHRONIC_MAX_DAYS):
        raise _bad(f"{at}.chronic_max_days", "chronic_max_days of %(inn)s must be null, 60 or 90",
                   inn=inn)
    if validity is not None and (type(validity) is not int
                                 or not 1 <= validity <= MAX_DEFAULT_VALIDITY_DAYS):
        raise _bad(f"{at}.default_validity_days", "default_validity_days of %(inn)s must be "
                   "1 to %(max)s days", inn=inn, max=MAX_DEFAULT_VALIDITY_DAYS)
    drug = Drug(inn=inn, name_uz=names["uz"], name_ru=names["ru"], name_en=names["en"], atc=atc,
                forms=forms, chronic_max_days=chronic, default_validity_days=validity,
                synonyms=tuple(synonyms), **flags)
    _check_policy(drug, at)
    return drug


def _check_policy(d: Drug, at: str) -> None:
    """The flags must agree with each other and with the prescribing law they encode."""
    controlled = d.antibacterial or d.hormonal or d.psychotropic_or_potent
    if (d.narcotic or d.anaesthetic) == d.e_prescribable:
        raise _bad(f"{at}.e_prescribable", "%(inn)s: narcotic drugs and anaesthesia agents, and "
                   "only they, are not e-prescribable", inn=d.inn)
    if not d.e_prescribable and (d.requires_e_prescription or d.otc or controlled
                                 or d.chronic_max_days is not None
                                 or d.default_validity_days is not None):
        raise _bad(f"{at}.e_prescribable", "%(inn)s is not e-prescribable, so it cannot carry "
                   "e-prescription, OTC, chronic or validity settings", inn=d.inn)
    if d.e_prescribable and d.default_validity_days is None:
        raise _bad(f"{at}.default_validity_days", "%(inn)s needs default_validity_days",
                   inn=d.inn)
    if controlled and not d.requires_e_prescription:
        raise _bad(f"{at}.requires_e_prescription", "%(inn)s is antibacterial, hormonal or "
                   "psychotropic/potent, so it requires an e-prescription", inn=d.inn)
    if d.otc and d.requires_e_prescription:
        raise _bad(f"{at}.otc", "%(inn)s cannot be both OTC and e-prescription only", inn=d.inn)
    if d.antibacterial and d.chronic_max_days is not None:
        raise _bad(f"{at}.chronic_max_days", "Antibacterial %(inn)s gets no chronic extension",
                   inn=d.inn)
    if ((d.hormonal or d.psychotropic_or_potent) and d.chronic_max_days is not None
            and d.chronic_max_days > CONTROLLED_CHRONIC_MAX_DAYS):
        raise _bad(f"{at}.chronic_max_days", "Hormonal or controlled %(inn)s is capped at "
                   "%(max)s days", inn=d.inn, max=CONTROLLED_CHRONIC_MAX_DAYS)
    if (d.chronic_max_days is not None and d.default_validity_days is not None
            and d.default_validity_days > d.chronic_max_days):
        raise _bad(f"{at}.default_validity_days", "%(inn)s: the default window exceeds the "
                   "chronic maximum", inn=d.inn)


def _atc(value: Any, at: str) -> str:
    if not isinstance(value, str) or not ATC_RE.match(value):
        raise _bad(at, "%(value)s is not a level-5 ATC code (like J01CA04)", value=str(value))
    return value


def _names(value: Any, at: str) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != set(LANGUAGES):
        raise _bad(at, "Names must be given in exactly uz, ru and en")
    for lang, name in value.items():
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise _bad(f"{at}.{lang}", "The %(lang)s name must be non-empty text", lang=lang)
        if bool(_CYRILLIC_RE.search(name)) != (lang == "ru"):
            raise _bad(f"{at}.{lang}", "The %(lang)s name %(name)s is in the wrong script "
                       "(Russian: Cyrillic; Uzbek and English: Latin)", lang=lang, name=name)
    return value


def _forms(value: Any, drug_atc: str, at: str) -> tuple[DrugForm, ...]:
    if not isinstance(value, list) or not value:
        raise _bad(at, "A drug needs at least one form")
    forms: list[DrugForm] = []
    for i, raw in enumerate(value):
        here = f"{at}[{i}]"
        if not isinstance(raw, dict) or not {"form", "unit", "strengths"} <= raw.keys():
            raise _bad(here, "A form needs form, unit and strengths")
        if unknown := sorted(raw.keys() - _FORM_KEYS):
            raise _bad(f"{here}.{unknown[0]}", "Unknown form field %(key)s", key=unknown[0])
        if not isinstance(raw["form"], str) or raw["form"] not in KNOWN_FORMS:
            raise _bad(f"{here}.form", "Unknown dosage form %(form)s", form=str(raw["form"]))
        if any(f.form == raw["form"] for f in forms):
            raise _bad(f"{here}.form", "Form %(form)s is listed twice", form=raw["form"])
        if not isinstance(raw["unit"], str) or raw["unit"] not in KNOWN_UNITS:
            raise _bad(f"{here}.unit", "Unknown unit %(unit)s", unit=str(raw["unit"]))
        strengths = raw["strengths"]
        if not isinstance(strengths, list) or not strengths:
            raise _bad(f"{here}.strengths", "A form needs at least one strength")
        for j, s in enumerate(strengths):
            if not isinstance(s, str) or not STRENGTH_RE.match(s):
                raise _bad(f"{here}.strengths[{j}]", "Strength %(strength)s is not written like "
                           "'500 mg', '250 mg/5 ml' or '100 mcg/dose'", strength=str(s))
        if len({_strength_key(s) for s in strengths}) != len(strengths):
            raise _bad(f"{here}.strengths", "A strength is listed twice")
        atc = _atc(raw["atc"], f"{here}.atc") if "atc" in raw else drug_atc
        forms.append(DrugForm(raw["form"], raw["unit"], tuple(strengths), atc))
    return tuple(forms)
