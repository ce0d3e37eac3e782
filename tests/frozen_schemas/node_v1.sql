-- Frozen copy of a node database at schema version 1, as nodes in the field have it.
-- Never edit: it proves that upgrades of those nodes work.
BEGIN TRANSACTION;
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY, staff_id TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE appointments (
    appointment_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    facility_id TEXT NOT NULL, starts_at TEXT NOT NULL, channel TEXT NOT NULL,
    status TEXT NOT NULL, queue_number INTEGER, cancel_reason TEXT, booked_hlc TEXT NOT NULL
);
CREATE TABLE card_reads (
    id INTEGER PRIMARY KEY AUTOINCREMENT, patient_id TEXT NOT NULL, staff_id TEXT NOT NULL,
    role TEXT NOT NULL, reason TEXT NOT NULL, read_at TEXT NOT NULL
);
CREATE TABLE diagnoses (
    visit_id TEXT NOT NULL, code TEXT NOT NULL, description TEXT, is_primary INTEGER NOT NULL,
    PRIMARY KEY (visit_id, code)
);
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
INSERT INTO "events" VALUES(1,'01J0000000000000000000EVT1','node-field-7',1,'001780000000000-00000','FacilityRegistered',1,'{"code": "SAM-POL-003", "facility_id": "01J0000000000000000000FAC1", "kind": "clinic", "name": "Samarqand 3-son poliklinika", "region": "SAM"}','0000000000000000000000000000000000000000000000000000000000000000','39b751dda2050375c1be6f56f4282078c18fe4f4da68938c42fe2540e8501c50','2026-06-01T08:00:01Z');
CREATE TABLE facilities (
    facility_id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    kind TEXT NOT NULL, region TEXT NOT NULL, address TEXT
);
INSERT INTO "facilities" VALUES('01J0000000000000000000FAC1','SAM-POL-003','Samarqand 3-son poliklinika','clinic','SAM',NULL);
CREATE TABLE lab_results (
    result_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, order_id TEXT, test TEXT NOT NULL,
    value TEXT NOT NULL, unit TEXT, reference_range TEXT, flag TEXT, observed_at TEXT NOT NULL
);
CREATE TABLE node_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "node_state" VALUES('node_id','node-field-7');
INSERT INTO "node_state" VALUES('hlc_last','001780000000000-00000');
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, visit_id TEXT NOT NULL, patient_id TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE patient_field_clock (
    patient_id TEXT NOT NULL, field TEXT NOT NULL, hlc TEXT NOT NULL, origin TEXT NOT NULL,
    PRIMARY KEY (patient_id, field)
);
CREATE TABLE patients (
    patient_id TEXT PRIMARY KEY, med_id TEXT NOT NULL UNIQUE, pinfl TEXT UNIQUE,
    document TEXT UNIQUE, full_name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,
    phone TEXT NOT NULL, phone_confirmed INTEGER NOT NULL DEFAULT 0,
    facility_id TEXT NOT NULL, family_doctor_id TEXT, registered_hlc TEXT NOT NULL
);
CREATE TABLE phone_codes (
    patient_id TEXT PRIMARY KEY, phone TEXT NOT NULL, code_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE practitioners (
    practitioner_id TEXT PRIMARY KEY, facility_id TEXT NOT NULL, full_name TEXT NOT NULL,
    specialty TEXT NOT NULL, is_family_doctor INTEGER NOT NULL
);
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
INSERT INTO "schema_migrations" VALUES(1,'2026-06-01T08:00:00Z');
CREATE TABLE slots (
    practitioner_id TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    facility_id TEXT NOT NULL, schedule_id TEXT NOT NULL,
    PRIMARY KEY (practitioner_id, starts_at)
);
CREATE TABLE sms_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, phone TEXT NOT NULL, body TEXT NOT NULL,
    purpose TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT
);
INSERT INTO "sms_outbox" VALUES(1,'+998901234567','DMED: tasdiqlash kodi 123456','phone_code','2026-06-01T08:00:02Z',NULL);
CREATE TABLE staff (
    staff_id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, full_name TEXT NOT NULL,
    role TEXT NOT NULL, pin_hash TEXT NOT NULL, practitioner_id TEXT,
    active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL
);
CREATE TABLE visits (
    visit_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, practitioner_id TEXT NOT NULL,
    facility_id TEXT NOT NULL, appointment_id TEXT, occurred_at TEXT NOT NULL,
    complaints TEXT, notes TEXT
);
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments (practitioner_id, starts_at)
    WHERE status IN ('booked', 'checked_in', 'completed', 'no_show');
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at);
CREATE INDEX visits_by_patient ON visits (patient_id, occurred_at);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',1);
INSERT INTO "sqlite_sequence" VALUES('sms_outbox',1);
COMMIT;
