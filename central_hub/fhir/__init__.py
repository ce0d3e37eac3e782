"""HL7 FHIR R4 from the hub, read-only: resources mapped from the projections, search,
Bulk Data $export, SMART Backend Services access. See README.md beside this file.

    systems      identifier systems, code systems, extension URLs
    mapping      rows -> resource dicts (no Flask, no SQL)
    sources      one SELECT per resource type and its search parameters
    search       strict parameter parsing, paging, read, streaming for export
    access       client registry, JWT assertions, tokens, scopes and regions, audit
    export       bulk $export jobs and the offline NDJSON writer
    capability   CapabilityStatement and SMART configuration
    schema       the "fhir" migration component (listed by central_hub.composition)

The Flask blueprint at /fhir/r4/ is central_hub.web.fhir_api.
"""
