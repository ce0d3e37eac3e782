"""Fixtures of the hub tests: the hub's clock moved by hand, the hub app over the test
storage with a test's own settings, the central staff account of the dashboard
(helpers.hub_app), and a hub seeded for the FHIR tests (helpers.fhir_hub). The storage, the
world, `hub_app` and the simulated nodes are in tests/conftest.py, since the protocol and
sync tests use them too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from helpers.fhir import Client, get_token, make_client
from helpers.fhir_hub import seed
from helpers.hub_app import Clock, add_central_staff, hub_app_for


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_hub(storage, world) -> Callable[..., Flask]:
    """`make_hub(clock=..., **settings)`: the hub app over this test's storage."""
    def make(clock: Clock | None = None, **settings: Any) -> Flask:
        return hub_app_for(storage, world, clock=clock, **settings)
    return make


@pytest.fixture
def central_staff(storage) -> dict[str, Any]:
    """The dashboard's central staff account (helpers.hub_app.CENTRAL_LOGIN, PASSWORD)."""
    return add_central_staff(storage)


@pytest.fixture
def fhir_seeded(hub_app, nodes) -> tuple[Any, Any, Client, dict[str, Any]]:
    """The hub seeded by helpers.fhir_hub.seed, and a FHIR client that may read everything:
    (test client, storage, FHIR client with its token, the seeded ids)."""
    ids = seed(nodes)
    storage = hub_app.extensions["dmed_hub"].storage
    http = hub_app.test_client()
    everyone = make_client(storage, "national-registry")
    get_token(http, everyone)
    return http, storage, everyone, ids
