"""Page catalogues compiled in memory: the hub's pages and the provisioning station translate
from their .po files without a build step (no .mo files to ship or keep in step)."""

from __future__ import annotations

import gettext
import logging
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger(__name__)


def compile_catalogue(path: Path, locale: str,
                      fallback: gettext.NullTranslations | None = None
                      ) -> gettext.NullTranslations:
    """The translations in the .po file at `path`; `fallback` (else the msgids themselves,
    i.e. English) when there is no such file, and for strings the file lacks."""
    if not path.is_file():
        return fallback if fallback is not None else gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    translations = gettext.GNUTranslations(compiled)
    if fallback is not None:
        translations.add_fallback(fallback)
    return translations
