"""Keep the message catalogues in step with the code.

Two catalogues:

* ``edge_node/translations``: every English message the services raise (``ProtocolError``
  and its subclasses, in edge_node/ and sync_protocol/) and every ``gettext`` call there. The
  screens show these to people, so they are translated like the screens.
* ``kiosk_ui/translations``: the screens' own strings (templates and Python), extracted by
  Babel with ``kiosk_ui/babel.cfg``.

Error classes are found in the source itself (any class deriving, directly or not, from
``ProtocolError``), and so are helpers that build them (a function with a ``message``
parameter that returns such a class), so a new error class or helper needs no keyword list.

Run from the repository root:
    .venv/bin/python -m kiosk_ui.extract_messages          # update both .pot and all .po files
    .venv/bin/python -m kiosk_ui.extract_messages --check  # list untranslated msgids, exit 1
Then translate the new entries (empty msgstr) in uz and ru, and run `make translations`.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = ("edge_node", "sync_protocol")
SERVICE_CATALOGUE = ROOT / "edge_node" / "translations"
UI_CATALOGUE = ROOT / "kiosk_ui" / "translations"
UI_MAPPING = ROOT / "kiosk_ui" / "babel.cfg"
LOCALES = ("uz", "ru", "en")
REQUIRED_LOCALES = ("uz", "ru")  # English msgids are already English
ROOT_ERROR = "ProtocolError"
GETTEXT_NAMES = frozenset({"gettext", "_", "lazy_gettext", "_l"})


@dataclass(frozen=True)
class Message:
    msgid: str
    path: str
    line: int


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _trees(packages: tuple[str, ...] = SERVICE_PACKAGES) -> dict[Path, ast.Module]:
    trees = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            trees[path] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


def error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """Names of every class deriving from ProtocolError, to a fixed point."""
    classes = {ROOT_ERROR}
    defs = [node for tree in trees.values() for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in defs:
            if node.name not in classes and any(_name(b) in classes for b in node.bases):
                classes.add(node.name)
                grew = True
    return classes


def _factories(tree: ast.Module, classes: set[str]) -> dict[str, int]:
    """Module-level helpers that build an error from a ``message`` argument: name -> index."""
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.returns is None:
            continue
        returns = node.returns.value if isinstance(node.returns, ast.Constant) else \
            _name(node.returns)
        names = [a.arg for a in node.args.args]
        if returns in classes and "message" in names:
            found[node.name] = names.index("message")
    return found


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def service_messages(trees: dict[Path, ast.Module] | None = None) -> dict[str, list[Message]]:
    """Every msgid raised or translated in the service packages, with where it appears."""
    trees = trees if trees is not None else _trees()
    classes = error_classes(trees)
    found: dict[str, list[Message]] = {}
    for path, tree in trees.items():
        factories = _factories(tree, classes)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = _name(node.func)
            if callee in classes or callee in GETTEXT_NAMES:
                index = 0
            elif callee in factories:
                index = factories[callee]
            else:
                continue
            arg = node.args[index] if len(node.args) > index else next(
                (k.value for k in node.keywords if k.arg == "message"), None)
            text = _literal(arg)
            if text is None:
                if arg is not None and callee not in GETTEXT_NAMES:
                    log.debug("non-literal message in %s:%s", path, node.lineno)
                continue
            found.setdefault(text, []).append(
                Message(text, str(path.relative_to(ROOT)), node.lineno))
    return found


def ui_messages() -> dict[str, list[Message]]:
    """The screens' strings, as Babel extracts them with kiosk_ui/babel.cfg."""
    with UI_MAPPING.open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, list[Message]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
            str(ROOT / "kiosk_ui"), method_map, options_map,
            keywords={"_": None, "gettext": None, "lazy_gettext": None, "_l": None}):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault(msgid, []).append(Message(msgid, f"kiosk_ui/{filename}", line))
    return found


def _template(messages: dict[str, list[Message]], project: str) -> Catalog:
    catalog = Catalog(project=project, version="1", copyright_holder="DMED Edge",
                      charset="utf-8")
    for msgid, places in sorted(messages.items()):
        python_format = "%(" in msgid
        catalog.add(msgid, locations=[(m.path, m.line) for m in places],
                    flags=("python-format",) if python_format else ())
    return catalog


def catalogue_path(directory: Path, locale: str) -> Path:
    return directory / locale / "LC_MESSAGES" / "messages.po"


def read_catalogue(directory: Path, locale: str) -> Catalog:
    path = catalogue_path(directory, locale)
    if not path.is_file():
        return Catalog(locale=locale)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def update(directory: Path, messages: dict[str, list[Message]], project: str) -> None:
    """Write messages.pot and merge it into every locale's .po, keeping translations."""
    template = _template(messages, project)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "messages.pot").open("wb") as handle:
        write_po(handle, template, width=100)
    for locale in LOCALES:
        catalog = read_catalogue(directory, locale)
        catalog.locale = locale  # type: ignore[assignment]
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()  # gone from the code: gone from the catalogue
        path = catalogue_path(directory, locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False)
        log.info("updated %s", path.relative_to(ROOT))


def untranslated(directory: Path, messages: dict[str, list[Message]],
                 locales: tuple[str, ...] = REQUIRED_LOCALES) -> dict[str, list[str]]:
    """msgids (per locale) with no translation, an empty one, or only a fuzzy guess."""
    missing: dict[str, list[str]] = {}
    for locale in locales:
        catalog = read_catalogue(directory, locale)
        for msgid in messages:
            entry = catalog.get(msgid)
            if entry is None or not entry.string or entry.fuzzy:
                missing.setdefault(locale, []).append(msgid)
    return missing


def _both() -> Iterator[tuple[Path, dict[str, list[Message]], str]]:
    yield SERVICE_CATALOGUE, service_messages(), "dmed-edge-services"
    yield UI_CATALOGUE, ui_messages(), "dmed-edge-screens"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report msgids without a uz or ru translation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    problems = 0
    for directory, messages, project in _both():
        if not args.check:
            update(directory, messages, project)
        for locale, msgids in untranslated(directory, messages).items():
            problems += len(msgids)
            for msgid in msgids:
                log.warning("%s: untranslated in %s: %s", directory.relative_to(ROOT), locale,
                            msgid)
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
