"""The hub tables of the FHIR interface (migration component "fhir").

Clients and their keys, issued access tokens (kept as hashes), assertion ids seen (replay),
the read audit and bulk export jobs. A partial index lets the FHIR reads find the clinical
and registry events that have no projection table of their own (visits, lab results,
practitioners, facilities) without scanning the whole log.
"""

from __future__ import annotations

from ..storage import Migration

COMPONENT = "fhir"
FHIR_V1 = """
CREATE TABLE fhir_clients (
    client_id TEXT PRIMARY KEY, name TEXT NOT NULL, public_key TEXT NOT NULL,
    alg TEXT NOT NULL, scopes TEXT NOT NULL, regions TEXT NOT NULL,
    created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE fhir_tokens (
    token_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE fhir_assertions (
    client_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE TABLE fhir_audit (
    id {serial_pk}, at TEXT NOT NULL, client_id TEXT NOT NULL, interaction TEXT NOT NULL,
    resource_type TEXT NOT NULL, count BIGINT NOT NULL, detail TEXT
);
CREATE INDEX fhir_audit_by_client ON fhir_audit (client_id, id);
CREATE TABLE fhir_exports (
    job_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, types TEXT NOT NULL, since TEXT,
    request_url TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    finished_at TEXT, output TEXT, error TEXT
);
-- searches by patient (MedicationRequest?patient=, MedicationDispense?patient=, Appointment)
CREATE INDEX fhir_prescriptions_by_patient ON hub_prescriptions (patient_id);
CREATE INDEX fhir_appointments_by_patient ON hub_appointments (patient_id);
CREATE INDEX fhir_events_registry_clinical ON events (type, subject_id)
    WHERE type IN ('FacilityRegistered', 'PractitionerRegistered', 'VisitRecorded',
                   'LabResultRecorded')
"""
MIGRATIONS = (Migration(COMPONENT, 1, FHIR_V1),)  # listed by central_hub.composition
