"""The central hub: global event log, signed sync API, least-knowledge pulls, projections,
conflicts, monitoring.

Library first; the web layer (central_hub.web, Flask) and `dmed-hub` (central_hub.cli) are thin
layers on it, and central_hub.composition says what the hub is made of, in order:

    composition  migration components, ingest hooks, conflict detectors, snapshot tables
    storage      one interface (storage.base.Storage), SQLite and PostgreSQL, migrations
    ingest       Ingestor: judge a pushed batch event by event, store, route, run hooks
    projector    the hooks over the log by a cursor (background or inline)
    projections, allergies, conflicts, reconciliation, claims   what the hooks keep
    conflict_review, call_centre, paper, staff, fleet, monitoring   services the pages call
    rights       which node kind may emit which event type (one table)
    routing      who gets each event (deliveries), derived at ingest
    scope        pull pages of a node's scope after its cursor
    hub_events   events the hub itself appends (conflicts, pads, call-centre requests)
    nodes, quarantine, nonces, trust_store   sync state, refused events, replay, trust list
    fhir         HL7 FHIR R4 mapping, search, $export, SMART backend access (web/fhir_api.py)
    web          app factory, JSON APIs, staff pages, /metrics, OpenAPI, the server
"""
