-- Frozen copy of a hub database (sqlite) at its oldest schema: component core, version 1,
-- as the first hubs (commit d56be5b) created it, with a little data. Never edit: it
-- proves that hubs in the field upgrade (tests/test_hub_upgrade.py).

CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version));
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hlc TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    received_at TEXT NOT NULL,
    facility_id TEXT,
    region TEXT,
    patient_id TEXT,
    subject_id TEXT,
    UNIQUE (origin, seq)
);
CREATE INDEX events_by_patient ON events (patient_id, position);
CREATE INDEX events_by_subject ON events (subject_id, position);
CREATE INDEX events_by_facility ON events (facility_id, position);
CREATE INDEX events_by_type ON events (type, position);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    position BIGINT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    until TEXT,
    UNIQUE (position, target_kind, target)
);
CREATE INDEX deliveries_by_target ON deliveries (target_kind, target, id);
CREATE TABLE scope_facilities (
    facility_id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE INDEX scope_facilities_by_code ON scope_facilities (code);
CREATE TABLE scope_subjects (
    subject_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    patient_id TEXT,
    facility_id TEXT,
    region TEXT,
    until TEXT
);
CREATE TABLE scope_attachments (
    patient_id TEXT PRIMARY KEY,
    facility_id TEXT NOT NULL,
    hlc TEXT NOT NULL,
    origin TEXT NOT NULL
);
CREATE TABLE scope_links (
    patient_id TEXT NOT NULL,
    facility_id TEXT NOT NULL,
    PRIMARY KEY (patient_id, facility_id)
);
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    facility_code TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    cert_kid TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_push_at TEXT,
    last_pull_at TEXT,
    synced_at TEXT,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    head_hash TEXT NOT NULL,
    last_cursor BIGINT NOT NULL DEFAULT 0,
    pushed_events BIGINT NOT NULL DEFAULT 0,
    pulled_events BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_code TEXT,
    last_error_at TEXT,
    flag TEXT
);
CREATE TABLE nonces (
    node_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    event_id TEXT,
    origin TEXT,
    seq BIGINT,
    hash TEXT,
    type TEXT,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    digest TEXT NOT NULL,
    chained INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT,
    UNIQUE (node_id, digest, code)
);
CREATE INDEX quarantine_by_chain ON quarantine (origin, seq);
CREATE INDEX quarantine_by_event ON quarantine (event_id);
CREATE TABLE identity_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    held_id TEXT,
    held_hash TEXT NOT NULL,
    presented_id TEXT,
    presented_hash TEXT NOT NULL,
    presented_kid TEXT,
    detected_at TEXT NOT NULL,
    UNIQUE (node_id, seq, presented_hash)
);
CREATE TABLE hub_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

INSERT INTO events (position, id, origin, seq, hlc, type, version, payload, prev_hash, hash, received_at, facility_id, region, patient_id, subject_id) VALUES (1, '01JD00000000000000000000E1', 'tas-field-0007', 1, '001796548822360-00000', 'FacilityRegistered', 1, '{"code":"TAS-POL-007","facility_id":"01JD0000000000000000000007","kind":"clinic","name":"Facility TAS-POL-007","region":"TAS"}', '0000000000000000000000000000000000000000000000000000000000000000', '229ea6ae78e261d65a69cf4bd8797d095765a897f8bbae0e66116de09326c469', '2026-11-28T09:00:00Z', '01JD0000000000000000000007', 'TAS', NULL, '01JD0000000000000000000007');
INSERT INTO deliveries (id, position, target_kind, target, origin, until) VALUES (1, 1, 'region', 'TAS', 'tas-field-0007', NULL);
INSERT INTO scope_facilities (facility_id, code, kind, region, origin) VALUES ('01JD0000000000000000000007', 'TAS-POL-007', 'clinic', 'TAS', 'tas-field-0007');
INSERT INTO nodes (node_id, facility_code, region, kind, cert_kid, first_seen, last_seen, last_push_at, last_pull_at, synced_at, acked_seq, head_hash, last_cursor, pushed_events, pulled_events, last_error, last_error_code, last_error_at, flag) VALUES ('tas-field-0007', 'TAS-POL-007', 'TAS', 'clinic', 'kid-of-the-field-node', '2026-11-28T09:00:00Z', '2026-11-28T09:00:00Z', '2026-11-28T09:00:00Z', '2026-11-28T09:00:00Z', '2026-11-28T09:00:00Z', 1, '229ea6ae78e261d65a69cf4bd8797d095765a897f8bbae0e66116de09326c469', 1, 1, 0, NULL, NULL, NULL, NULL);
INSERT INTO hub_state (key, value, updated_at) VALUES ('trust_list_note', 'kept through the upgrade', '2026-11-28T09:00:00Z');
INSERT INTO schema_migrations (component, version, applied_at) VALUES ('core', 1, '2026-11-27T22:00:00Z');
