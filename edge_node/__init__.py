"""The facility node: its SQLite store and event log, migrations and projections, domain
services (services/), sync agent (sync/), JSON API and app factory (web/), LAN discovery and
the `dmed-node` CLI. Imports sync_protocol only; the screens (kiosk_ui) plug in."""
