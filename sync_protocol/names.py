"""Personal names compared across scripts: the same Uzbek name is written in Latin (Karimov,
Xo'jayev) and in Cyrillic (Каримов, Хўжаев). ``name_key`` brings either spelling to one
plain Latin key, so a search typed in one script finds the name written in the other.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# Uzbek and Russian Cyrillic to the Uzbek Latin alphabet (1995), apostrophes dropped.
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "j",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "x", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "yu",
    "я": "ya", "ў": "o", "қ": "q", "ғ": "g", "ҳ": "h",
}
_TRANSLITERATE = str.maketrans(_CYRILLIC)
# Spellings that differ between the scripts' usual romanisations, folded to one form:
# Russian-style "kh" and Uzbek "x" (Khamidov / Xamidov), "ye"/"e" (Aliyev / Алиев),
# "iy"/"i" (Валиевич / Valiyevich endings), "dj"/"j" (Djuraev / Jo'rayev), and Uzbek "q"
# which Russian spelling writes "к" (Qodirov / Кодиров).
_FOLDS = (("kh", "x"), ("dj", "j"), ("ye", "e"), ("iy", "i"), ("q", "k"))
_NOT_LETTERS = re.compile(r"[^a-z ]")


def name_key(text: str) -> str:
    """A lower-case Latin key of a name: equal for the Latin and Cyrillic spellings."""
    key = (text or "").lower().translate(_TRANSLITERATE)
    key = _NOT_LETTERS.sub("", key.replace("-", " "))
    for spelled, folded in _FOLDS:
        key = key.replace(spelled, folded)
    return " ".join(key.split())


def name_matches(query: str, name: str) -> bool:
    """Every word of the query starts a word of the name, in any order (partial names)."""
    words = name_key(name).split()
    wanted = name_key(query).split()
    return bool(wanted) and all(any(w.startswith(q) for w in words) for q in wanted)
