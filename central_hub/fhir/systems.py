"""Identifier systems, code systems and extension URLs of the hub's FHIR resources.

The DMED systems are URIs under one base; a national profile may later publish others, and
then only this module changes. HL7 and WHO systems are the published ones.
"""

from __future__ import annotations

from sync_protocol.event_names import (
                      ALLERGY_RECORDED,
                      APPOINTMENT_BOOKED,
                      FACILITY_REGISTERED,
                      LAB_RESULT_RECORDED,
                      MEDICATION_DISPENSED,
                      PATIENT_REGISTERED,
                      PRACTITIONER_REGISTERED,
                      PRESCRIPTION_ISSUED,
                      VISIT_RECORDED,
)

FHIR_VERSION = "4.0.1"
DMED = "https://dmed.uz/fhir"

# identifiers
PINFL = f"{DMED}/sid/pinfl"  # the 14-digit personal number (JShShIR)
DOCUMENT = f"{DMED}/sid/identity-document"  # passport / ID card: series + 7 digits
MED_ID = f"{DMED}/sid/med-id"  # the electronic medical card number
FACILITY_CODE = f"{DMED}/sid/facility-code"
NODE_ID = f"{DMED}/sid/node-id"
EVENT_ID = f"{DMED}/sid/event-id"
PRESCRIPTION_ID = f"{DMED}/sid/prescription-id"
PRESCRIPTION_NUMBER = f"{DMED}/sid/prescription-number"
PAPER_SERIAL = f"{DMED}/sid/paper-prescription-serial"
DISPENSE_ID = f"{DMED}/sid/dispense-id"
PRACTITIONER_ID = f"{DMED}/sid/practitioner-id"

# extensions (valueX in brackets)
EXT_MEDIUM = f"{DMED}/StructureDefinition/prescription-medium"  # [code] electronic | paper
EXT_PAPER_REASON = f"{DMED}/StructureDefinition/paper-reason"  # [code] outage | emergency
EXT_SIGNING_NODE = f"{DMED}/StructureDefinition/signing-node"  # [Identifier]
EXT_SIGNING_CERT = f"{DMED}/StructureDefinition/signing-certificate"  # [string] kid, hex
EXT_DISPENSE_MODE = f"{DMED}/StructureDefinition/dispense-mode"  # [code] online_claimed|offline
EXT_DISPENSED_AS = f"{DMED}/StructureDefinition/dispensed-as"  # [Reference] the dispenses
EXT_REGION = f"{DMED}/StructureDefinition/region"  # [code]
EXT_EVENT_SEQUENCE = f"{DMED}/StructureDefinition/event-sequence"  # [integer]
EXT_EVENT_HASH = f"{DMED}/StructureDefinition/event-hash"  # [string] hex SHA-256
EXT_EVENT_TYPE = f"{DMED}/StructureDefinition/event-type"  # [code]
EXT_HLC = f"{DMED}/StructureDefinition/hybrid-logical-clock"  # [string]

# published code systems
ATC = "http://www.whocc.no/atc"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
COURSE_OF_THERAPY = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"
PROVENANCE_ACTIVITY = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
UCUM = "http://unitsofmeasure.org"

# our values -> FHIR codes
APPOINTMENT_STATUS = {"booked": "booked", "moving": "booked", "checked_in": "arrived",
                      "completed": "fulfilled", "no_show": "noshow", "cancelled": "cancelled",
                      "bumped": "cancelled"}
GENDER = {"male": "male", "female": "female"}
FLAG = {"normal": "N", "low": "L", "high": "H", "abnormal": "A"}
FACILITY_TYPE = {"clinic": ("prov", "Healthcare Provider"), "pharmacy": ("prov", "Pharmacy")}
# Node events whose Provenance is served: the events behind a served resource.
PROVENANCE_ACTIVITY_OF = {PATIENT_REGISTERED: "CREATE", FACILITY_REGISTERED: "CREATE",
                          PRACTITIONER_REGISTERED: "CREATE", APPOINTMENT_BOOKED: "CREATE",
                          VISIT_RECORDED: "CREATE", LAB_RESULT_RECORDED: "CREATE",
                          PRESCRIPTION_ISSUED: "CREATE", MEDICATION_DISPENSED: "CREATE",
                          ALLERGY_RECORDED: "CREATE"}
