"""Errors of the FHIR interface; each becomes an OperationOutcome with its HTTP status."""

from __future__ import annotations

from ..errors import HubError


class FhirError(HubError):
    code = "fhir_error"
    http_status = 400
    issue = "invalid"  # OperationOutcome.issue.code (http://hl7.org/fhir/issue-type)


class BadSearch(FhirError):
    code = "bad_search"
    issue = "invalid"


class UnknownResource(FhirError):
    code = "not_found"
    http_status = 404
    issue = "not-found"


class NotAuthorised(FhirError):
    """No token, or a token that is unknown or expired (SMART: 401)."""

    code = "unauthorised"
    http_status = 401
    issue = "login"


class OutOfScope(FhirError):
    """A valid token whose scopes do not cover the resource type or region (403)."""

    code = "out_of_scope"
    http_status = 403
    issue = "forbidden"


class BadClientAssertion(FhirError):
    """The token endpoint's refusals (RFC 6749 5.2: invalid_client and friends)."""

    code = "invalid_client"
    http_status = 401
    issue = "security"


class BadRegistration(FhirError):
    code = "bad_registration"


class ExportNotFound(FhirError):
    code = "export_not_found"
    http_status = 404
    issue = "not-found"
