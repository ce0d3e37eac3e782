"""The central hub: global event log, signed sync API, least-knowledge pulls, dashboard data.

Library first; `central_hub.web.app.create_app` and `dmed-hub` (central_hub.cli) are thin layers:

    storage     one interface (storage.base.Storage), SQLite and PostgreSQL, migrations
    ingest      Ingestor: judge a pushed batch event by event, store, route, run hooks
    rights      which node kind may emit which event type (one table)
    routing     who gets each event (deliveries), derived at ingest
    scope       pull pages of a node's scope after its cursor
    hub_events  events the hub itself appends (conflicts, pads, call-centre requests)
    nodes, quarantine, nonces, trust_store   sync state, refused events, replay, trust list
    fhir        read-only HL7 FHIR R4 at /fhir/r4/: search, $export, SMART backend access
"""
