"""Numbered schema migrations of the node database, recorded in ``schema_migrations``.

A released migration is never edited: nodes in the field already ran it. Add a new number.
Tables fall in two groups: projections (rebuilt from the event log alone) and node-local
tables (staff, sessions, audit, SMS outbox), which never sync, so they breed no conflicts.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

PROJECTION_TABLES = (
    "facilities", "practitioners", "slots", "patients", "patient_field_clock", "appointments",
    "visits", "diagnoses", "orders", "lab_results", "chronic_conditions", "prescriptions",
    "prescription_items", "dispenses", "conflicts", "paper_pads", "paper_dispenses",
    "remote_requests", "allergies", "allergy_retractions",
)

V1 = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of arrival on this node
    id TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hlc TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (origin, seq)
);
CREATE TABLE node_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE facilities (
    facility_id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    kind TEXT NOT NULL, region TEXT NOT NULL, address TEXT
);
CREATE TABLE practitioners (
    practitioner_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, full_name TEXT NOT NULL,
    specialty TEXT NOT NULL, is_family_doctor INTEGER NOT NULL
);
CREATE TABLE slots (
    practitioner_id TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    facility_id TEXT NOT NULL, schedule_id TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, starts_at)
);
CREATE TABLE patients (
    patient_id TEXT PRIMARY KEY, med_id TEXT NOT NULL UNIQUE, pinfl TEXT UNIQUE,
    document TEXT UNIQUE, full_name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,
    phone TEXT NOT NULL, phone_confirmed INTEGER NOT NULL DEFAULT 0,
    facility_id TEXT NOT NULL, family_doctor_id TEXT, registered_hlc TEXT NOT NULL
);
-- Last writer per patient field: the later clock wins, whatever order events arrive in.
CREATE TABLE patient_field_clock (
    patient_id TEXT NOT NULL, field TEXT NOT NULL, hlc TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (patient_id, field)
);
CREATE TABLE appointments (
    appointment_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    facility_id TEXT NOT NULL, starts_at TEXT NOT NULL, channel TEXT NOT NULL,
    status TEXT NOT NULL, queue_number INTEGER, cancel_reason TEXT, booked_hlc TEXT NOT NULL
);
-- One live appointment per doctor and time: the second booking of a slot fails here.
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments (practitioner_id, starts_at)
    WHERE status IN ('booked', 'checked_in', 'completed', 'no_show');
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at);
CREATE TABLE visits (
    visit_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    facility_id TEXT NOT NULL, appointment_id TEXT, occurred_at TEXT NOT NULL,
    complaints TEXT, notes TEXT
);
CREATE INDEX visits_by_patient ON visits (patient_id, occurred_at);
CREATE TABLE diagnoses (
    visit_id TEXT NOT NULL, code TEXT NOT NULL, description TEXT, is_primary INTEGER NOT NULL,
    PRIMARY KEY (visit_id, code)
);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, visit_id TEXT NOT NULL, patient_id TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE lab_results (
    result_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, order_id TEXT, test TEXT NOT NULL,
    value TEXT NOT NULL, unit TEXT, reference_range TEXT, flag TEXT, observed_at TEXT NOT NULL
);
CREATE TABLE staff (
    staff_id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, full_name TEXT NOT NULL,
    role TEXT NOT NULL, pin_hash TEXT NOT NULL, practitioner_id TEXT,
    active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY, staff_id TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE card_reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT NOT NULL, staff_id TEXT NOT NULL,
    role TEXT NOT NULL, reason TEXT NOT NULL, read_at TEXT NOT NULL
);
CREATE TABLE sms_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, phone TEXT NOT NULL, body TEXT NOT NULL,
    purpose TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT
);
CREATE TABLE phone_codes (
    patient_id TEXT PRIMARY KEY, phone TEXT NOT NULL, code_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
);
"""

# v2: SMS delivery retries with backoff (an outage may last days), and sign-in throttling.
V2 = """
ALTER TABLE sms_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN last_error TEXT;
ALTER TABLE sms_outbox ADD COLUMN next_attempt_at TEXT;
CREATE INDEX sms_outbox_pending ON sms_outbox (sent_at, next_attempt_at);
CREATE TABLE sign_in_failures (
    subject TEXT NOT NULL, failed_at TEXT NOT NULL
);
CREATE INDEX sign_in_failures_by_subject ON sign_in_failures (subject, failed_at);
"""

# v3: e-prescriptions, chronic conditions, dispenses, and the pharmacy's cache of codes it
# scanned (it may dispense against a code whose PrescriptionIssued has not reached it yet).
V3 = """
CREATE TABLE chronic_conditions (
    patient_id TEXT NOT NULL, code TEXT NOT NULL, active INTEGER NOT NULL,
    hlc TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (patient_id, code)
);
CREATE TABLE prescriptions (
    prescription_id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    patient_id TEXT NOT NULL, pinfl TEXT NOT NULL, facility_id TEXT NOT NULL,
    practitioner_id TEXT NOT NULL, issued_at TEXT NOT NULL, not_before TEXT NOT NULL,
    expires_at TEXT NOT NULL, chronic INTEGER NOT NULL, qr TEXT,
    status TEXT NOT NULL DEFAULT 'active', cancelled_at TEXT, cancel_reason TEXT
);
CREATE INDEX prescriptions_by_patient ON prescriptions (patient_id, issued_at);
CREATE INDEX prescriptions_by_pinfl ON prescriptions (pinfl);
CREATE TABLE prescription_items (
    prescription_id TEXT NOT NULL, item_no INTEGER NOT NULL, inn TEXT NOT NULL,
    form TEXT NOT NULL, strength TEXT NOT NULL, unit TEXT, quantity INTEGER NOT NULL,
    dosage TEXT, repeats INTEGER NOT NULL, min_days_between_fills INTEGER NOT NULL,
    PRIMARY KEY (prescription_id, item_no)
);
CREATE TABLE dispenses (
    dispense_id TEXT PRIMARY KEY, prescription_id TEXT NOT NULL, item_no INTEGER NOT NULL,
    quantity INTEGER NOT NULL, product TEXT NOT NULL, batch TEXT NOT NULL, expiry TEXT NOT NULL,
    dispensed_at TEXT NOT NULL, facility_id TEXT NOT NULL, mode TEXT NOT NULL,
    fill_number INTEGER, pharmacist TEXT, origin TEXT NOT NULL
);
CREATE INDEX dispenses_by_prescription ON dispenses (prescription_id, item_no);
CREATE TABLE scanned_codes (
    prescription_id TEXT PRIMARY KEY, qr TEXT NOT NULL, claims TEXT NOT NULL,
    first_scanned_at TEXT NOT NULL
);
"""

# v4: sync. Who booked a slot first decides double bookings made while apart; events the hub
# refused and remote events this node could not apply are kept and shown, never dropped.
V4 = """
ALTER TABLE appointments ADD COLUMN booked_origin TEXT NOT NULL DEFAULT '';
CREATE TABLE sync_refusals (
    event_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL,
    reason TEXT, refused_at TEXT NOT NULL
);
CREATE TABLE apply_failures (
    event_id TEXT PRIMARY KEY, origin TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE TABLE conflicts (
    conflict_id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_id TEXT NOT NULL,
    details TEXT NOT NULL, state TEXT NOT NULL, raised_at TEXT NOT NULL,
    state_changed_at TEXT, state_changed_by TEXT, note TEXT
);
"""

# v5: paper fallback. Pads of numbered serials held by this facility; paper prescriptions
# and paper dispenses entered after an outage.
V5 = """
CREATE TABLE paper_pads (
    pad_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, series TEXT NOT NULL,
    first_serial INTEGER NOT NULL, last_serial INTEGER NOT NULL
);
ALTER TABLE prescriptions ADD COLUMN paper_serial TEXT;
ALTER TABLE prescriptions ADD COLUMN paper_reason TEXT;
ALTER TABLE prescriptions ADD COLUMN entered_at TEXT;
ALTER TABLE prescriptions ADD COLUMN patient_document TEXT;
CREATE INDEX prescriptions_by_document ON prescriptions (patient_document);
-- Not unique: a serial entered at two nodes is two records, and the hub flags the pair.
CREATE INDEX prescriptions_by_serial ON prescriptions (paper_serial);
CREATE TABLE paper_dispenses (
    dispense_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, paper_serial TEXT,
    prescription_number TEXT, prescription_id TEXT, patient_document TEXT, pinfl TEXT,
    dispensed_at TEXT NOT NULL, entered_at TEXT NOT NULL, paper_reason TEXT NOT NULL,
    items TEXT NOT NULL, origin TEXT NOT NULL
);
"""

# v6: remote prescriptions for bedridden patients (1003 call centre): requests the hub sent
# to this facility and the decision in force (the earliest by clock, if two doctors decided).
V6 = """
CREATE TABLE remote_requests (
    request_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, facility_id TEXT NOT NULL,
    practitioner_id TEXT, requested_by TEXT NOT NULL, request_text TEXT NOT NULL,
    phone TEXT, requested_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'requested',
    decided_by TEXT, decided_at TEXT, decided_hlc TEXT, decided_origin TEXT,
    prescription_id TEXT, pickup_code TEXT, note TEXT
);
CREATE INDEX remote_requests_by_status ON remote_requests (facility_id, status, requested_at);
"""

# v7: a node catching up after an outage looks up each prescription's cancellation; without
# this index that lookup scans the log and catch-up grows quadratic.
V7 = """
CREATE INDEX events_cancellation_by_prescription
    ON events (json_extract(payload, '$.prescription_id'))
    WHERE type = 'PrescriptionCancelled';
"""

# v8: every look-up a projection makes into the log during a catch-up is an index search.
# A prescription's earliest cancellation comes from the index in clock order (no sort per
# look-up); a remote prescription request finds the decisions that arrived before it without
# scanning the whole log.
V8 = """
CREATE INDEX events_cancellation_by_prescription_hlc
    ON events (json_extract(payload, '$.prescription_id'), hlc)
    WHERE type = 'PrescriptionCancelled';
DROP INDEX events_cancellation_by_prescription;
CREATE INDEX events_decision_by_request
    ON events (json_extract(payload, '$.request_id'))
    WHERE type = 'RemotePrescriptionDecided';
"""

# v9: why a received event was not applied. 'clock': refused before applying (its clock is
# too far ahead), so a rebuild leaves it out as the live path did; 'apply': it failed to apply.
V9 = """
ALTER TABLE apply_failures ADD COLUMN kind TEXT NOT NULL DEFAULT 'apply';
UPDATE apply_failures SET kind = 'clock' WHERE reason LIKE 'Remote clock % ahead of this node';
"""

# v10 (issue 11): failed and locked sign-ins kept for the node's admin to see (node-local,
# never synced, pruned after SIGN_IN_LOG_DAYS); kiosk sessions recorded on the server, so
# Finish, the idle rule and a sign-out end them for every copy of the cookie.
V10 = """
CREATE TABLE sign_in_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, username TEXT NOT NULL,
    outcome TEXT NOT NULL, trusted_device INTEGER NOT NULL, client TEXT NOT NULL
);
CREATE INDEX sign_in_log_by_time ON sign_in_log (at);
CREATE TABLE kiosk_sessions (
    session_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, started_at TEXT NOT NULL,
    last_seen REAL NOT NULL, ended_at TEXT
);
"""

# v11: the phone became optional at registration (patients without one), so its column loses
# NOT NULL (SQLite rebuilds the table for that; nothing references it); the desk searches by
# birth date and by name in either script (name_key: sync_protocol.names, filled by the
# projections; rows migrated with NULL get it at the next rebuild and are searched meanwhile);
# allergies and intolerances on the medical card, to an INN or an ATC class.
# A retraction may arrive before the record it retracts (another node's order), so it is
# kept by id and the record is born retracted.
V11 = """
CREATE TABLE patients_v11 (
    patient_id TEXT PRIMARY KEY, med_id TEXT NOT NULL UNIQUE, pinfl TEXT UNIQUE,
    document TEXT UNIQUE, full_name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,
    phone TEXT, phone_confirmed INTEGER NOT NULL DEFAULT 0,
    facility_id TEXT NOT NULL, family_doctor_id TEXT, registered_hlc TEXT NOT NULL,
    name_key TEXT
);
INSERT INTO patients_v11 SELECT patient_id, med_id, pinfl, document, full_name, birth_date,
    sex, NULLIF(phone, ''), phone_confirmed, facility_id, family_doctor_id, registered_hlc,
    NULL FROM patients;
DROP TABLE patients;
ALTER TABLE patients_v11 RENAME TO patients;
CREATE INDEX patients_by_birth_date ON patients (birth_date);
CREATE TABLE allergies (
    allergy_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, kind TEXT NOT NULL,
    substance_type TEXT NOT NULL, substance TEXT NOT NULL, reaction TEXT NOT NULL,
    severity TEXT, recorded_at TEXT NOT NULL, recorded_by TEXT, hlc TEXT NOT NULL,
    retracted_at TEXT, retract_reason TEXT
);
CREATE INDEX allergies_by_patient ON allergies (patient_id);
CREATE TABLE allergy_retractions (
    allergy_id TEXT PRIMARY KEY, retracted_at TEXT NOT NULL, reason TEXT NOT NULL,
    hlc TEXT NOT NULL, origin TEXT NOT NULL
);
"""

# v12 (issue 16): who added which staff account, and the refusals (`dmed-node staff add`);
# node-local, never synced; never a PIN.
V12 = """
CREATE TABLE staff_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL, outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""

# v13: the appointments table is re-decided from the log per slot (edge_node.slot_projection):
# an appointment's events, and the appointments that claimed a time, are index searches.
V13 = """
CREATE INDEX events_by_appointment ON events (json_extract(payload, '$.appointment_id'))
    WHERE type IN ('AppointmentBooked', 'AppointmentRescheduled', 'AppointmentCheckedIn',
                   'AppointmentCompleted', 'AppointmentNoShow', 'AppointmentCancelled');
CREATE INDEX events_claim_by_start ON events (json_extract(payload, '$.starts_at'))
    WHERE type IN ('AppointmentBooked', 'AppointmentRescheduled');
"""

MIGRATIONS: tuple[tuple[int, str], ...] = ((1, V1), (2, V2), (3, V3), (4, V4), (5, V5),
                                           (6, V6), (7, V7), (8, V8), (9, V9), (10, V10),
                                           (11, V11), (12, V12), (13, V13))
LATEST = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                    " AND name = 'schema_migrations'").fetchone() is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection, now: str) -> list[int]:
    """Apply every migration above the recorded version, one step at a time."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                 "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = []
    for version, script in MIGRATIONS:
        if version <= current_version(conn):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                         (version, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("node database migrated to version %s", version)
        applied.append(version)
    return applied


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; run statement by statement instead.
    return [s.strip() for s in script.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())
