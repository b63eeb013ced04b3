"""The sandbox's errors: one base, small subclasses that differ by Salesforce's ``errorCode`` and HTTP status.

::

    SalesforceError                          answered as [{"message", "errorCode", "fields"}]
    ├── MalformedQueryError                  400 MALFORMED_QUERY: SOQL that does not parse
    ├── InvalidFieldError                    400 INVALID_FIELD: no such field, or a value of the wrong type
    ├── InvalidTypeError                     400 INVALID_TYPE: no such sObject type in a query
    ├── InvalidQueryFilterOperatorError      400 INVALID_QUERY_FILTER_OPERATOR: e.g. an id literal that is no id
    ├── NumberOutsideValidRangeError         400 NUMBER_OUTSIDE_VALID_RANGE: e.g. OFFSET over 2,000
    ├── InvalidQueryLocatorError             400 INVALID_QUERY_LOCATOR: unknown, expired or closed locator
    ├── JsonParserError                      400 JSON_PARSER_ERROR: a control body that is not JSON
    ├── RequiredFieldMissingError            400 REQUIRED_FIELD_MISSING
    ├── InvalidPicklistError                 400 INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST
    ├── FieldIntegrityError                  400 FIELD_INTEGRITY_EXCEPTION
    ├── InvalidFieldForInsertUpdateError     400 INVALID_FIELD_FOR_INSERT_UPDATE: a read-only field written
    ├── InvalidCrossReferenceKeyError        400 INVALID_CROSS_REFERENCE_KEY: a reference to nothing
    ├── InvalidSessionError                  401 INVALID_SESSION_ID
    ├── RequestLimitExceededError            403 REQUEST_LIMIT_EXCEEDED: the org's daily API requests are used up
    ├── NotFoundError                        404 NOT_FOUND
    ├── MethodNotAllowedError                405 METHOD_NOT_ALLOWED
    ├── UnknownExceptionError                500 UNKNOWN_EXCEPTION
    └── ServerUnavailableError               503 SERVER_UNAVAILABLE

    OAuthError                               400 {"error", "error_description"}: the token endpoint's own shape

Domain code raises these; :mod:`~.responses` turns one into the vendor's body.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = (
    "FieldIntegrityError",
    "InvalidCrossReferenceKeyError",
    "InvalidFieldError",
    "InvalidFieldForInsertUpdateError",
    "InvalidPicklistError",
    "InvalidQueryFilterOperatorError",
    "InvalidQueryLocatorError",
    "InvalidSessionError",
    "InvalidTypeError",
    "JsonParserError",
    "MalformedQueryError",
    "MethodNotAllowedError",
    "NotFoundError",
    "NumberOutsideValidRangeError",
    "OAuthError",
    "RequestLimitExceededError",
    "RequiredFieldMissingError",
    "SalesforceError",
    "ServerUnavailableError",
    "UnknownExceptionError",
)


class SalesforceError(Exception):
    """Base of the errors answered as Salesforce's error array."""

    status_code: ClassVar[int] = 400
    """The HTTP status it answers with."""
    error_code: ClassVar[str] = "UNKNOWN_EXCEPTION"
    """Salesforce's ``errorCode``."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        """Keep ``message`` and the ``fields`` it concerns."""
        super().__init__(message)
        self.message = message
        """What went wrong, for the client."""
        self.fields = fields
        """The fields concerned (Salesforce's ``fields``), empty when none is."""


class MalformedQueryError(SalesforceError):
    """The SOQL does not parse."""

    error_code = "MALFORMED_QUERY"


class InvalidFieldError(SalesforceError):
    """A field that does not exist, or a filter value of the wrong type for its field."""

    error_code = "INVALID_FIELD"


class InvalidTypeError(SalesforceError):
    """An sObject type that does not exist."""

    error_code = "INVALID_TYPE"


class InvalidQueryFilterOperatorError(SalesforceError):
    """A filter that cannot apply, such as an id field compared with something that is not an id."""

    error_code = "INVALID_QUERY_FILTER_OPERATOR"


class NumberOutsideValidRangeError(SalesforceError):
    """A number outside what the API takes (``OFFSET`` over 2,000)."""

    error_code = "NUMBER_OUTSIDE_VALID_RANGE"


class InvalidQueryLocatorError(SalesforceError):
    """A ``nextRecordsUrl`` whose locator is unknown, expired or was closed."""

    error_code = "INVALID_QUERY_LOCATOR"


class JsonParserError(SalesforceError):
    """A body that is not the JSON expected."""

    error_code = "JSON_PARSER_ERROR"


class RequiredFieldMissingError(SalesforceError):
    """A required field is missing from a create."""

    error_code = "REQUIRED_FIELD_MISSING"


class InvalidPicklistError(SalesforceError):
    """A value that is not in a restricted picklist."""

    error_code = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


class FieldIntegrityError(SalesforceError):
    """A write that breaks a rule between fields (Amount of an opportunity with products)."""

    error_code = "FIELD_INTEGRITY_EXCEPTION"


class InvalidFieldForInsertUpdateError(SalesforceError):
    """A read-only or unknown field in a create or update."""

    error_code = "INVALID_FIELD_FOR_INSERT_UPDATE"


class InvalidCrossReferenceKeyError(SalesforceError):
    """A reference field that names no record of the right type."""

    error_code = "INVALID_CROSS_REFERENCE_KEY"


class InvalidSessionError(SalesforceError):
    """No access token, or one that is unknown or timed out."""

    status_code = 401
    error_code = "INVALID_SESSION_ID"


class RequestLimitExceededError(SalesforceError):
    """The org's daily API request limit is used up (Salesforce answers 403 here, not 429)."""

    status_code = 403
    error_code = "REQUEST_LIMIT_EXCEEDED"


class NotFoundError(SalesforceError):
    """No such resource, record or API version."""

    status_code = 404
    error_code = "NOT_FOUND"


class MethodNotAllowedError(SalesforceError):
    """The resource exists but not with that method."""

    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"


class UnknownExceptionError(SalesforceError):
    """A server error (injected, or a sandbox bug)."""

    status_code = 500
    error_code = "UNKNOWN_EXCEPTION"


class ServerUnavailableError(SalesforceError):
    """The server is unavailable (injected)."""

    status_code = 503
    error_code = "SERVER_UNAVAILABLE"


class OAuthError(Exception):
    """A refused token request, answered as ``{"error", "error_description"}`` (OAuth's shape, not the array)."""

    status_code: ClassVar[int] = 400
    """Salesforce answers refused token requests with 400."""

    def __init__(self, error: str, description: str) -> None:
        """Keep the OAuth ``error`` code and its description."""
        super().__init__(f"{error}: {description}")
        self.error = error
        """OAuth's error code: ``invalid_grant``, ``invalid_client``, ``unsupported_grant_type``, ..."""
        self.description = description
        """Salesforce's ``error_description``."""
