"""The CapabilityStatement and SMART configuration: exactly what this server supports."""

from __future__ import annotations

from typing import Any

from .access import ALGORITHMS, GRANT_TYPE
from .search import MAX_COUNT
from .sources import COMMON_PARAMS, SOURCES
from .systems import FHIR_VERSION

SOFTWARE = "DMED Edge hub"
PARAM_TYPES = {"token": "token", "reference": "reference", "date": "date", "string": "string"}


def capability_statement(base: str, published: str) -> dict[str, Any]:
    resources = []
    for name, source in sorted(SOURCES.items()):
        params = [{"name": p, "type": "token" if p == "_id" else "number", "documentation": d}
                  for p, d in COMMON_PARAMS.items()]
        params += [{"name": p, "type": PARAM_TYPES[param.kind], "documentation": param.doc}
                   for p, param in sorted(source.params.items())]
        resources.append({"type": name, "interaction": [{"code": "read"},
                                                        {"code": "search-type"}],
                          "versioning": "no-version", "readHistory": False,
                          "updateCreate": False, "searchParam": params})
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": published,
        "kind": "instance", "publisher": "DMED Edge",
        "software": {"name": SOFTWARE},
        "implementation": {"description": "Read-only FHIR R4 view of the DMED hub's "
                                          "projections", "url": base},
        "fhirVersion": FHIR_VERSION, "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": f"Read and search only; _count at most {MAX_COUNT}; unknown "
                             "search parameters are refused (400). System-level $export "
                             "(Bulk Data Access) with _type and _since.",
            "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"}]}],
                "description": "SMART Backend Services: client_credentials with a JWT "
                               "assertion (private_key_jwt); scopes system/<Type>.read",
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                           "oauth-uris",
                    "extension": [{"url": "token", "valueUri": f"{base}/auth/token"}]}]},
            "resource": resources,
            "operation": [{"name": "export",
                           "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
                                         "export"}]}]}


def smart_configuration(base: str) -> dict[str, Any]:
    return {"token_endpoint": f"{base}/auth/token", "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
            "scopes_supported": [f"system/{t}.read" for t in sorted(SOURCES)] +
                                ["system/*.read"],
            "capabilities": ["client-confidential-asymmetric"]}
