"""Fixtures of the node tests: the first seeded patient and a two-item prescription issued
for them by the seeded doctor. The node's database, app, client, staff and demo data are in
tests/conftest.py, since the screen and sync tests use them too."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.node import AMLODIPINE, AMOXICILLIN

from edge_node.services import prescribing


@pytest.fixture
def patient(seeded) -> str:
    """The first seeded patient's id."""
    return seeded["patient_rows"][0]["patient_id"]


@pytest.fixture
def rx(store, seeded, patient, actor_for, clinic_credentials) -> dict[str, Any]:
    """Amoxicillin and amlodipine for the first patient, signed by the clinic; the issued
    prescription with the patient's PINFL added (`pinfl`), as a pharmacy is handed it."""
    result = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                            patient_id=patient, items=[AMOXICILLIN, AMLODIPINE])
    return {**result, "pinfl": seeded["patients"][0]["pinfl"]}
