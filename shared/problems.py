"""RFC 9457 problem details: the one table from errors to statuses, and the pages behind each ``type``.

Every error any service answers goes through :func:`to_problem`, so the three
layers share one shape: ``type`` (``/problems/{code}``), ``title``, ``status``,
``detail``, ``instance``, ``trace_id`` and ``request_id``, plus members that say
what went wrong (``errors`` for invalid fields).
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import MediaType, Response, get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from shared import errors
from shared.observability.context import current_trace

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "PROBLEM_TYPE_PREFIX",
    "STATUS_BY_ERROR",
    "FieldError",
    "Problem",
    "problem_page",
    "problem_responses",
    "problems_plugin",
    "to_problem",
)

logger = logging.getLogger("finsync.errors")

PROBLEM_TYPE_PREFIX = "/problems/"

STATUS_BY_ERROR: dict[type[errors.FinsyncError], int] = {
    errors.SettingsError: 500,
    errors.ClientError: 400,
    errors.BadRequestError: 400,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.BusinessRuleError: 422,
    errors.InvalidEntryError: 422,
    errors.OversizedEntryError: 422,
    errors.UnknownCurrencyError: 422,
    errors.InvalidAmountError: 422,
    errors.UnbalancedJournalError: 422,
    errors.SourceRejectedError: 422,
    errors.IdempotencyKeyMissingError: 400,
    errors.IdempotencyKeyInvalidError: 400,
    errors.IdempotencyKeyInUseError: 409,
    errors.IdempotencyKeyReusedError: 422,
    errors.RateLimitedError: 429,
    errors.ServiceUnavailableError: 503,
    errors.UpstreamError: 502,
    errors.UpstreamRejectedError: 502,
    errors.UpstreamContractError: 502,
    errors.UpstreamUnavailableError: 503,
    errors.UpstreamTimeoutError: 504,
}
"""The one table: error class -> HTTP status. Subclasses not listed take their parent's."""

# Statuses that Litestar itself raises (routing, parsing, limits) and their stable codes.
_CODE_BY_STATUS: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad request", errors.BadRequestError.__doc__ or ""),
    401: ("unauthenticated", "Authentication required", errors.AuthenticationError.__doc__ or ""),
    403: ("forbidden", "Forbidden", errors.PermissionDeniedError.__doc__ or ""),
    404: ("not-found", "Not found", errors.NotFoundError.__doc__ or ""),
    405: ("method-not-allowed", "Method not allowed", "The path exists, but not for this HTTP method."),
    406: ("not-acceptable", "Not acceptable", "No representation matches the Accept header."),
    409: ("conflict", "Conflict", errors.ConflictError.__doc__ or ""),
    413: ("payload-too-large", "Payload too large", errors.PayloadTooLargeError.__doc__ or ""),
    415: ("unsupported-media-type", "Unsupported media type", errors.UnsupportedMediaTypeError.__doc__ or ""),
    422: ("business-rule-violated", "Business rule violated", errors.BusinessRuleError.__doc__ or ""),
    429: ("rate-limited", "Too many requests", errors.RateLimitedError.__doc__ or ""),
    500: ("internal-error", "Internal error", "Something failed inside finsync. Quote the trace id."),
    502: ("upstream-error", "Upstream error", errors.UpstreamError.__doc__ or ""),
    503: ("service-unavailable", "Service unavailable", "The service or a system it needs is unavailable."),
    504: ("upstream-timeout", "Upstream timeout", errors.UpstreamTimeoutError.__doc__ or ""),
}

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid input."""

    message: str
    """What is wrong with it."""
    key: str | None = None
    """The parameter or field name."""
    source: str | None = None
    """Where it was: ``query``, ``path``, ``header``, ``cookie`` or ``body``."""


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem; members beyond these say what went wrong."""

    type: str
    """Stable URI of the kind of error, such as ``/problems/not-found``; it resolves to a page."""
    title: str
    """Short summary of the kind of error."""
    status: int
    """HTTP status."""
    detail: str | None = None
    """What went wrong this time."""
    trace_id: str | None = None
    """W3C trace id of the request."""
    request_id: str | None = None
    """Id of the request, as in ``X-Request-ID``."""
    errors: list[FieldError] | None = None
    """Invalid inputs, for 400 answers."""


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers an operation documents, all problem+json."""
    statuses = (*statuses, 500)
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_CODE_BY_STATUS[status][1],
            generate_examples=False,
        )
        for status in sorted(set(statuses))
    }


_INTERNAL_DETAIL = "An unexpected error occurred. Quote the trace id to the operator."


def _status_for(exc: errors.FinsyncError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    trace = current_trace()
    members: dict[str, Any] = dict(extra or {})
    if trace is not None:
        members["trace_id"] = trace.trace_id
        members["request_id"] = trace.request_id
    return ProblemDetailsException(
        status_code=status,
        type_=f"{PROBLEM_TYPE_PREFIX}{code}",
        title=title,
        detail=detail,
        extra=members,
        headers=headers,
    )


def to_problem(exc: Exception) -> ProblemDetailsException:
    """Map any exception to a problem; 5xx details never carry internals."""
    if isinstance(exc, errors.FinsyncError):
        status = _status_for(exc)
        headers = exc.headers or None
        if status >= 500 and not isinstance(exc, errors.UpstreamError | errors.ServiceUnavailableError):
            logger.error("internal error", exc_info=exc)
            return _problem(status, code="internal-error", title="Internal error", detail=_INTERNAL_DETAIL)
        return _problem(
            status, code=exc.code, title=exc.title, detail=exc.detail, extra=exc.extra, headers=headers
        )
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code, title, _ = _CODE_BY_STATUS.get(status, _CODE_BY_STATUS[500 if status >= 500 else 400])
        if status >= 500 and status not in (502, 503, 504):
            logger.error("internal error", exc_info=exc)
            return _problem(status, code=code, title=title, detail=_INTERNAL_DETAIL, headers=exc.headers)
        extra: dict[str, Any] = {}
        if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
            extra["errors"] = exc.extra
        elif isinstance(exc.extra, dict):
            extra.update(exc.extra)
        return _problem(status, code=code, title=title, detail=exc.detail, extra=extra, headers=exc.headers)
    logger.error("unhandled exception", exc_info=exc)
    return _problem(500, code="internal-error", title="Internal error", detail=_INTERNAL_DETAIL)


def problems_plugin() -> ProblemDetailsPlugin:
    """The Litestar plugin that renders every error through :func:`to_problem`."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                HTTPException: to_problem,
                errors.FinsyncError: to_problem,
                Exception: to_problem,
            }
        )
    )


def _catalogue() -> Iterator[tuple[str, str, str]]:
    seen: set[str] = set()
    for code, title, text in _CODE_BY_STATUS.values():
        seen.add(code)
        yield code, title, text
    pending: list[type[errors.FinsyncError]] = [errors.FinsyncError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.code not in seen:
            seen.add(cls.code)
            yield cls.code, cls.title, (cls.__doc__ or "").strip()


@get(
    "/problems/{code:str}",
    media_type=MediaType.HTML,
    summary="Explain one problem type",
    operation_id="GetProblemType",
    tags=["problems"],
    raises=[NotFoundException],
    include_in_schema=False,
    opt={"public": True},
)
async def problem_page(code: FromPath[str]) -> Response[str]:
    """A short page explaining a problem ``type`` URI."""
    for known, title, text in _catalogue():
        if known == code:
            body = (
                f"<!doctype html><title>{html.escape(title)}</title>"
                f"<h1>{html.escape(title)}</h1><p><code>{PROBLEM_TYPE_PREFIX}{html.escape(code)}</code></p>"
                f"<p>{html.escape(text)}</p>"
            )
            return Response(body, media_type=MediaType.HTML)
    raise NotFoundException(f"no problem type named {code!r}")
