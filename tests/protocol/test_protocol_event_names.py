"""The shared language as code: every event type is a declared name in sync_protocol.

Node, hub, screens and provisioning refer to event types only through
`sync_protocol.event_names`; a bare "PrescriptionIssued" in product code (or a quoted
'PrescriptionIssued' in a query) would let the two sides drift apart unnoticed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sync_protocol import event_names
from sync_protocol.event_types import SCHEMAS, event_types

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("edge_node", "central_hub", "kiosk_ui", "provisioning", "sync_protocol")
DECLARED = frozenset(event_names.ALL)
QUOTED = re.compile(r"'(" + "|".join(sorted(DECLARED)) + r")'")
# Schema text is frozen once released (migrations are never edited), so DDL keeps its literals.
DDL = re.compile(r"^\s*(--[^\n]*\n\s*)*(CREATE|DROP|ALTER)\b", re.IGNORECASE)


def _bare_names(path: Path) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if node.value in DECLARED:
            found.append(f"{where}:{node.lineno} {node.value!r}")
        elif QUOTED.search(node.value) and not DDL.match(node.value):
            found.append(f"{where}:{node.lineno} "
                         f"{QUOTED.search(node.value).group(0)} in SQL")
    return found


def test_every_schema_type_is_a_declared_name_and_back():
    assert set(event_types()) == DECLARED
    assert len(event_names.ALL) == len(DECLARED)


def test_constant_names_spell_their_values():
    for attribute in dir(event_names):
        value = getattr(event_names, attribute)
        if attribute.isupper() and isinstance(value, str):
            assert re.sub(r"(?<!^)(?=[A-Z])", "_", value).upper() == attribute


def test_no_bare_event_type_strings_in_product_code():
    files = [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))
             if p != ROOT / "sync_protocol" / "event_names.py"]
    assert len(files) > 100  # the scan really walked the tree
    found = [hit for path in files for hit in _bare_names(path)]
    assert found == [], "use sync_protocol.event_names:\n" + "\n".join(found)


def test_scan_catches_a_bare_name_and_a_quoted_one(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text('X = "PrescriptionIssued"\nQ = "SELECT 1 WHERE type = \'SlotsPublished\'"\n'
                   'DDL = """\\nCREATE INDEX i ON e (t) WHERE type = \'SlotsPublished\'"""\n')
    hits = _bare_names(bad)
    assert [hit.split(" ", 1)[1] for hit in hits] == ["'PrescriptionIssued'",
                                                       "'SlotsPublished' in SQL"]


def test_node_and_hub_project_only_declared_types():
    from central_hub.projections import PROJECTED_TYPES
    from edge_node.projections import HANDLERS

    assert set(HANDLERS) <= DECLARED
    assert set(PROJECTED_TYPES) <= DECLARED
    assert {name for name, _ in SCHEMAS} == DECLARED


@pytest.mark.parametrize("names, expected", [
    ((event_names.SLOTS_PUBLISHED,), "'SlotsPublished'"),
    ((event_names.ALLERGY_RECORDED, event_names.ALLERGY_RETRACTED),
     "'AllergyRecorded', 'AllergyRetracted'"),
])
def test_sql_literals(names, expected):
    assert event_names.sql_literals(*names) == expected


@pytest.mark.parametrize("names", [(), ("Robert'); DROP TABLE events; --",),
                                   ("SlotsPublished", "slotspublished")])
def test_sql_literals_refuses_undeclared_text(names):
    with pytest.raises(ValueError, match="not declared event types"):
        event_names.sql_literals(*names)
