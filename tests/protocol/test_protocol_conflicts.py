"""Conflict kinds and states are one definition (sync_protocol.conflicts) that the hub
raises, the schema accepts, the node sorts by role, and every screen has words for."""

from __future__ import annotations

import pytest

from sync_protocol import conflicts
from sync_protocol.event_names import CONFLICT_RAISED, CONFLICT_STATE_CHANGED
from sync_protocol.event_types import SCHEMAS


def test_schema_enums_are_the_protocols():
    raised = SCHEMAS[(CONFLICT_RAISED, 1)]["properties"]["kind"]["enum"]
    changed = SCHEMAS[(CONFLICT_STATE_CHANGED, 1)]["properties"]["state"]["enum"]
    assert tuple(raised) == conflicts.KINDS
    assert tuple(changed) == conflicts.REVIEW_STATES == (conflicts.ACKNOWLEDGED,
                                                         conflicts.RESOLVED)


def test_kind_groups_partition_the_kinds():
    assert sorted(conflicts.DISPENSING_KINDS + conflicts.REGISTRY_KINDS) == sorted(
        conflicts.KINDS)
    assert set(conflicts.DISPENSE_KINDS) < set(conflicts.DISPENSING_KINDS)


def test_node_roles_see_protocol_kinds():
    from edge_node.services import conflicts as node

    assert set(node.KINDS) == set(conflicts.KINDS)
    assert node.KINDS_BY_ROLE["pharmacist"] == conflicts.DISPENSING_KINDS
    assert node.KINDS_BY_ROLE["registrar"] == conflicts.REGISTRY_KINDS
    assert node.STATES == conflicts.STATES


def test_every_kind_and_state_has_words_on_every_screen():
    from central_hub.conflict_words import RULES
    from central_hub.web.dashboard_pages import NAMES
    from kiosk_ui.labels import CONFLICT_KINDS, CONFLICT_STATES

    assert set(RULES) == set(conflicts.KINDS)
    assert set(conflicts.KINDS) <= set(NAMES)
    assert set(CONFLICT_KINDS) == set(conflicts.KINDS)
    assert set(conflicts.STATES) <= set(CONFLICT_STATES)


@pytest.mark.parametrize("current, new, allowed", [
    (conflicts.OPEN, conflicts.ACKNOWLEDGED, True),
    (conflicts.OPEN, conflicts.RESOLVED, True),
    (conflicts.ACKNOWLEDGED, conflicts.RESOLVED, True),
    (conflicts.ACKNOWLEDGED, conflicts.ACKNOWLEDGED, False),
    (conflicts.RESOLVED, conflicts.ACKNOWLEDGED, False),
    (conflicts.RESOLVED, conflicts.RESOLVED, False),
    (conflicts.OPEN, conflicts.OPEN, False),
    (conflicts.OPEN, "closed", False),
])
def test_review_steps(current, new, allowed):
    assert conflicts.may_change(current, new) is allowed
