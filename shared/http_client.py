"""The one way a layer builds its client for the layer below.

One ``httpx.AsyncClient`` per app, opened in the lifespan, with timeouts,
retries of transient failures only (connect errors, timeouts, 429, 502, 503,
504; never a POST without an idempotency key), exponential backoff with full
jitter that honours ``Retry-After``, and the caller's ``traceparent`` on every
call. :class:`LayerClient` turns transport and contract failures into the
``Upstream*`` errors of :mod:`shared.errors`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import msgspec
from httpx_retries import Retry, RetryTransport

from shared import errors
from shared.ndjson import NDJSON
from shared.observability.context import current_trace
from shared.pagination import Page

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ("NDJSON", "LayerClient", "Probe", "create_http_client", "elapsed_ms", "probe")

T = TypeVar("T")

_RETRY_STATUSES = (429, 502, 503, 504)
_RETRY_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


async def _propagate_trace(request: httpx.Request) -> None:
    trace = current_trace()
    if trace is not None:
        request.headers["traceparent"] = trace.traceparent


def create_http_client(
    base_url: str,
    *,
    service: str,
    timeout: float,
    retries: int,
    backoff_factor: float,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """Build the client a layer uses for the layer below it.

    Args:
        base_url: Root URL of the layer below.
        service: Name of the calling service, sent in ``User-Agent``.
        timeout: Seconds for each of connect, read, write and pool.
        retries: How many times a transient failure is retried.
        backoff_factor: Base of the exponential backoff, in seconds.
        transport: The seam for tests (an ``ASGITransport``); a pooled HTTP transport by default.
        auth: How to authenticate to the layer below (its client-credentials token).
    """
    retry = Retry(
        total=retries,
        backoff_factor=backoff_factor,
        backoff_jitter=1.0,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=_RETRY_METHODS,
        respect_retry_after_header=True,
        max_backoff_wait=30.0,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        transport=RetryTransport(transport or httpx.AsyncHTTPTransport(), retry=retry),
        headers={"user-agent": f"finsync-{service}", "accept": "application/json"},
        event_hooks={"request": [_propagate_trace]},
        auth=auth,
    )


class LayerClient:
    """Base of the typed clients for a layer below: decoding and error translation in one place."""

    layer: str = "layer below"
    """Name used in error messages."""
    page_size: int = 500
    """Items asked for per page of a list (the lists' documented maximum)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call to the layer below; a 2xx answer, or the failure as an ``Upstream*`` error.

        Raises:
            UpstreamTimeoutError: no answer in time.
            UpstreamUnavailableError: unreachable, or a 5xx answer.
            UpstreamRejectedError: a 4xx answer (its problem type and detail in the message).
        """
        with self._translated(method, path):
            response = await self.http.request(method, path, **kwargs)
        self._check(response, method, path)
        return response

    async def stream_ndjson(
        self,
        path: str,
        decoder: msgspec.json.Decoder[T],
        params: dict[str, str],
        *,
        batch_bytes: int = 1 << 20,
    ) -> AsyncIterator[list[T]]:
        """GET ``path`` as newline-delimited JSON and give its records in batches of about ``batch_bytes``, as
        they arrive: a read of a million rows holds one batch at a time.

        Raises:
            UpstreamTimeoutError, UpstreamUnavailableError, UpstreamRejectedError: as :meth:`request`, also
                when the stream breaks off.
            UpstreamContractError: a line that does not decode as the decoder's type.
        """
        with self._translated("GET", path):
            async with self.http.stream("GET", path, params=params, headers={"Accept": NDJSON}) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._check(response, "GET", path)
                tail = b""
                async for chunk in response.aiter_bytes(batch_bytes):
                    data = tail + chunk
                    cut = data.rfind(b"\n") + 1
                    tail = data[cut:]
                    if cut:
                        yield self._lines(decoder, data[:cut], path)
                if tail.strip():
                    yield self._lines(decoder, tail, path)

    def _lines(self, decoder: msgspec.json.Decoder[T], data: bytes, path: str) -> list[T]:
        try:
            return decoder.decode_lines(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.UpstreamContractError(f"{self.layer} streamed {path} off contract: {exc}") from exc

    @contextmanager
    def _translated(self, method: str, path: str) -> Iterator[None]:
        """Transport failures as ``Upstream*`` errors."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise errors.UpstreamTimeoutError(f"{self.layer} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise errors.UpstreamUnavailableError(
                f"{self.layer} is unreachable: {type(exc).__name__}"
            ) from exc

    def _check(self, response: httpx.Response, method: str, path: str) -> None:
        """A 4xx or 5xx answer as an ``Upstream*`` error, with its problem's type and detail."""
        if response.status_code >= 400:
            error = (
                errors.UpstreamUnavailableError
                if response.status_code >= 500
                else errors.UpstreamRejectedError
            )
            raise error(
                f"{self.layer} answered {response.status_code} to {method} {path}{_problem(response)}",
                upstream_status=response.status_code,
            )

    async def get(self, path: str, type_: type[T], params: dict[str, Any] | None = None) -> T:
        """GET ``path`` and decode a 2xx JSON body as ``type_``.

        Raises:
            UpstreamTimeoutError: no answer in time.
            UpstreamUnavailableError: unreachable, or a 5xx answer.
            UpstreamRejectedError: a 4xx answer.
            UpstreamContractError: a body that does not match the contract.
        """
        response = await self.request("GET", path, params=params)
        try:
            return msgspec.json.decode(response.content, type=type_)
        except msgspec.DecodeError as exc:
            raise errors.UpstreamContractError(
                f"{self.layer} answered GET {path} off contract: {exc}"
            ) from exc

    async def get_every_page(self, path: str, page_type: type[Page[T]]) -> list[T]:
        """Follow ``next_cursor`` through every page of a list.

        Raises:
            UpstreamContractError: a page hands back the cursor that fetched it.
        """
        items: list[T] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if cursor is not None:
                params["cursor"] = cursor
            page = await self.get(path, page_type, params=params)
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            if page.next_cursor == cursor:
                raise errors.UpstreamContractError(f"{self.layer} repeated the cursor of {path}")
            cursor = page.next_cursor

    async def probe(self, path: str) -> Probe:
        """GET a health path of the layer below and report what happened; never raises."""
        return await probe(self.http, path)


def _problem(response: httpx.Response) -> str:
    """``: {type} {detail}`` of a problem+json answer, or nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = f"{body.get('type', '')} {body.get('detail', '')}".strip()
    return f": {text}" if text else ""


async def probe(client: httpx.AsyncClient, url: str, timeout: float | None = None) -> Probe:
    """GET ``url`` once: a 2xx is ``up``, any other answer or failure ``down``. Never raises."""
    started = time.perf_counter()
    try:
        response = await (client.get(url) if timeout is None else client.get(url, timeout=timeout))
    except httpx.TimeoutException:
        return Probe(status="down", latency_ms=elapsed_ms(started), detail="no answer in time")
    except httpx.HTTPError as exc:
        return Probe(
            status="down", latency_ms=elapsed_ms(started), detail=f"unreachable: {type(exc).__name__}"
        )
    status: Literal["up", "down"] = "up" if response.is_success else "down"
    return Probe(status=status, latency_ms=elapsed_ms(started), detail=f"HTTP {response.status_code}")


class Probe(msgspec.Struct, kw_only=True):
    """Outcome of one health probe of a layer or system."""

    status: Literal["up", "down"]
    """``up`` on a 2xx answer."""
    latency_ms: float
    """Time to the answer, or to the failure."""
    detail: str
    """What was seen, such as ``HTTP 503`` or ``unreachable: ConnectError``."""


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading), to the microsecond."""
    return round((time.perf_counter() - started) * 1000, 3)
