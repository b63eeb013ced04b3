"""The Salesforce REST answers the connector reads, as msgspec Structs (the vendor's field names).

Query records are decoded in two steps: the page first, with every JSON
number of its records read as an exact ``Decimal`` (never through a float),
then each record converted into its row type. The second step is also where
the configured legal-entity field (a custom field, so its name is not known
here) is moved to :data:`LEGAL_ENTITY`. Only the fields the connector uses are
declared; ``attributes`` and anything else are ignored.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

__all__ = (
    "LEGAL_ENTITY",
    "PAGES",
    "AccountNumberRow",
    "AccountRow",
    "ApiError",
    "LineRow",
    "LineStamp",
    "OAuthError",
    "OpportunityRow",
    "QueryPage",
    "TokenAnswer",
)

LEGAL_ENTITY = "LegalEntity"
"""Key the configured legal-entity field's value is moved to before a record becomes an :class:`OpportunityRow`
(no standard Salesforce field has this name, and custom ones end in ``__c``)."""


class _Row(msgspec.Struct, rename="pascal", kw_only=True, frozen=True):
    """Base of the records' shapes: Salesforce's PascalCase API names; unknown fields (``attributes``) ignored.

    mypy reads each class's own arguments, so every subclass repeats ``kw_only=True, frozen=True``.
    """


class QueryPage(msgspec.Struct, rename="camel", kw_only=True):
    """One batch of a SOQL query: ``GET /query?q=`` or its ``nextRecordsUrl``."""

    total_size: int
    """Records in the whole result."""
    done: bool
    """No batch follows."""
    next_records_url: str | None = None
    """The next batch (an instance path), while not ``done``."""
    records: list[dict[str, Any]]
    """The records, numbers as ``Decimal``; converted to a row type by the caller."""


PAGES = msgspec.json.Decoder(QueryPage, float_hook=Decimal)
"""Decodes query batches; a JSON number with a fraction becomes a ``Decimal`` from its digits."""


class OpportunityRow(_Row, kw_only=True, frozen=True):
    """An Opportunity: the deal."""

    id: str
    is_deleted: bool = False
    account_id: str | None = None
    name: str
    stage_name: str
    amount: Decimal | None = None
    """Sum of the line items' ``TotalPrice`` when it has products; may be null without."""
    probability: Decimal | None = None
    """Percent (90 is 90 %)."""
    close_date: date
    is_closed: bool
    is_won: bool
    currency_iso_code: str | None = None
    """Only in multi-currency orgs."""
    legal_entity: str | None = msgspec.field(default=None, name=LEGAL_ENTITY)
    """The configured legal-entity field's value, moved here (see :data:`LEGAL_ENTITY`)."""
    last_modified_date: datetime


class LineRow(_Row, kw_only=True, frozen=True):
    """An OpportunityLineItem: one product of a deal."""

    id: str
    opportunity_id: str
    sort_order: Decimal | None = None
    product_code: str | None = None
    name: str | None = None
    """``{opportunity name} {product name}``, as Salesforce names line items."""
    quantity: Decimal
    unit_price: Decimal
    total_price: Decimal
    discount: Decimal | None = None
    """Percent (10 is 10 %)."""
    service_date: date | None = None
    last_modified_date: datetime


class LineStamp(_Row, kw_only=True, frozen=True):
    """When a line item changed, and whose it is: what the walk over changed line items reads."""

    id: str
    opportunity_id: str
    last_modified_date: datetime


class AccountRow(_Row, kw_only=True, frozen=True):
    """An Account: a customer."""

    id: str
    is_deleted: bool = False
    name: str
    account_number: str | None = None
    """The ERP's party code, when the account carries one."""
    billing_country: str | None = None
    currency_iso_code: str | None = None
    last_modified_date: datetime


class AccountNumberRow(_Row, kw_only=True, frozen=True):
    """An Account's id and business code, for the ``customer`` of bookings."""

    id: str
    account_number: str | None = None


class TokenAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """The answer of ``/services/oauth2/token`` (no ``expires_in``, no refresh token)."""

    access_token: str
    """Sent as ``Authorization: Bearer {token}``."""
    instance_url: str
    """Where the org's REST API is: ``{instance_url}/services/data/vXX.X``."""


class ApiError(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """One element of a REST error answer: ``[{"message", "errorCode", "fields"}]``."""

    message: str = ""
    error_code: str = ""
    fields: list[str] = []


class OAuthError(msgspec.Struct, kw_only=True, frozen=True):
    """A refused token request: ``{"error", "error_description"}``."""

    error: str = ""
    error_description: str = ""
