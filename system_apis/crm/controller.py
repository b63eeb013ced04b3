"""``/v1/crm/{source}/...``: the customers and bookings of one CRM source, in canonical terms.

Every operation needs ``crm:read``; the CRM is only read. Customers page like
the other master data; bookings are read incrementally (a read ends with a
``sync_cursor`` that later returns only what changed) and also stream as
``application/x-ndjson`` when asked with ``Accept``. Each call costs the org
API calls against its daily allowance: past the source's share of it the
answer is 503 with ``Retry-After``, before the org is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter, QueryParameter

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.canonical import Booking, BookingStatus, Customer
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, paginate
from shared.problems import problem_responses
from system_apis.crm.bookings import read_bookings
from system_apis.crm.schemas import BookingPage, CrmCustomerPage
from system_apis.queries import FeedCursor, ModifiedSince, feed_answer, parse_time

if TYPE_CHECKING:
    from litestar.datastructures import State

    from system_apis.connectors.salesforce.connector import SalesforceConnector
    from system_apis.crm.registry import CrmRegistry

__all__ = ("CrmController",)

SourcePath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="CRM source id.")]
RecordPath = Annotated[
    str,
    Parameter(
        pattern=r"^[!-~]{1,256}$",
        description="Record id, as listed (printable ASCII, no spaces or control characters).",
    ),
]
READ_ERRORS = problem_responses(400, 404, 502, 503, 504, *AUTH_ERRORS)


def _registry(state: State) -> CrmRegistry:
    registry: CrmRegistry = state.crm
    return registry


def _connector(state: State, source: str) -> SalesforceConnector:
    return _registry(state).get(source)


class CrmController(Controller):
    """One CRM source in canonical terms."""

    path = "/v1/crm/{source:str}"
    tags = ["crm"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        "/customers",
        operation_id="ListCrmCustomers",
        summary="List the CRM's customers",
        responses=READ_ERRORS,
        **requires("crm:read"),
    )
    async def list_customers(
        self,
        state: State,
        source: FromPath[SourcePath],
        modified_since: ModifiedSince = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
    ) -> CrmCustomerPage:
        """The CRM's accounts that carry a customer code (`AccountNumber`, the ERP's party code), as customers.
        `country` is set only when the account's billing country is an ISO code. Ordered by id."""
        records = await _connector(state, source).accounts(parse_time(modified_since))
        return paginate(
            records, key=lambda record: record.id, limit=limit, cursor=cursor, page_type=CrmCustomerPage
        )

    @get(
        "/customers/{customer_id:str}",
        operation_id="GetCrmCustomer",
        summary="Get a CRM customer",
        responses=READ_ERRORS,
        **requires("crm:read"),
    )
    async def get_customer(
        self, state: State, source: FromPath[SourcePath], customer_id: FromPath[RecordPath]
    ) -> Customer:
        """One customer by id (404 when the account does not exist or carries no customer code)."""
        return await _connector(state, source).customer(customer_id)

    @get(
        "/bookings",
        operation_id="ListBookings",
        summary="Read bookings incrementally",
        responses=READ_ERRORS,
        **requires("crm:read"),
    )
    async def list_bookings(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        modified_since: ModifiedSince = None,
        status: Annotated[
            BookingStatus | None, QueryParameter(description="Only bookings in this status now.")
        ] = None,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: FeedCursor = None,
    ) -> BookingPage:
        """Bookings (opportunities with their lines) in `modified_at` order; a change to a line alone counts.

        Page on with `next_cursor`. A read ends with a `sync_cursor`; passing it
        later returns each booking changed since, changes made during the read
        included, and no version twice. A filtered read returns the bookings in
        that status when read (one that left it is not reported). With
        `Accept: application/x-ndjson` the page's bookings stream one per line,
        the cursors in the `Next-Cursor` and `Sync-Cursor` headers.
        """
        registry = _registry(state)
        page = await read_bookings(
            registry.get(source),
            registry.feeds,
            status=status,
            modified_since=parse_time(modified_since),
            cursor=cursor,
            limit=limit,
        )
        return feed_answer(request, page)  # type: ignore[no-any-return]

    @get(
        "/bookings/{booking_id:str}",
        operation_id="GetBooking",
        summary="Get a booking",
        responses=READ_ERRORS,
        **requires("crm:read"),
    )
    async def get_booking(
        self, state: State, source: FromPath[SourcePath], booking_id: FromPath[RecordPath]
    ) -> Booking:
        """One booking by id, with its lines, as the CRM holds it now."""
        return await _connector(state, source).booking(booking_id)
