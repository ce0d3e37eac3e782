"""Helpers of the test suite, imported as ``from helpers.<module> import ...`` (pyproject's
pytest ``pythonpath`` puts tests/ on the path; bench scripts insert it). Fixtures are not
here: they live in tests/conftest.py and each area's conftest.py.

- ``pki``: a national root, region TAS, a clinic and a pharmacy; ``node``: slots, snapshots,
  events made as another node would; ``hub``: PostgreSQL schemas, simulated nodes that sign
  like a node; ``hub_app``: the hub app over a test storage, a hand-moved clock, central
  staff signed in; ``fhir``, ``fhir_hub`` (a hub seeded with one of everything FHIR serves),
  ``mrz``, ``ui``, ``browser``: what their areas' tests share.
- The sync harness: ``servers`` (loopback ports and server threads), ``enrolments`` (roles,
  bundles, seeded node templates), ``transports`` (a hub app in-process), ``sync_world``
  (a hub and enrolled nodes), ``convergence`` (the checks), ``workload`` (what people do),
  ``processes`` (services as processes, for SIGKILL; bench/ uses ``HubProcess``);
  ``paper_world``: a hub and two nodes as HTTP servers for the paper scenarios.
"""
