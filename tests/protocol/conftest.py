"""Fixtures of the protocol tests (the shared language, PKI and provisioning)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from provisioning.cli import PASSPHRASE_ENV


@pytest.fixture
def runner(monkeypatch):
    """click's runner for dmed-provision, with no passphrase or store directory inherited."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv("DMED_PROVISION_DIR", raising=False)
    return CliRunner()
