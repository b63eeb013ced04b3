"""Salesforce records to canonical ones (rules ``salesforce/v1``): accounts to customers, opportunities to bookings.

Pure: rows in, canonical records out, nothing read. The rules:

- **Customer** (Account): ``code`` is ``AccountNumber`` (the ERP party code);
  an account without one that fits a code is no customer of the model.
  ``country`` is ``BillingCountry`` only when it is an ISO alpha-2 code (a
  free-text country name gives null); ``currency`` is ``CurrencyIsoCode``.
- **Booking** (Opportunity with its line items): ``status`` is ``won`` when
  ``IsWon``, ``lost`` when closed and not won, else ``open``; ``entity`` is the
  configured legal-entity field; ``customer`` is the account's
  ``AccountNumber``. ``Probability`` and ``Discount`` are percents in Salesforce
  and fractions here. A line's ``description`` is its product's name.
- **Money** arrives as exact ``Decimal`` (never a float) and is quantized to the
  currency's minor unit, half up; ``amount`` is ``Amount``, or the sum of the
  lines when the org left it null.
- **modified_at** of a booking is the latest ``LastModifiedDate`` of the
  opportunity and its lines (a line can change without its opportunity).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from shared.canonical import Booking, BookingLine, BookingStatus, Customer
from shared.canonical.currencies import MINOR_UNITS
from shared.canonical.fields import CODE_PATTERN
from shared.errors import UpstreamContractError
from system_apis.connectors.salesforce.wire import AccountRow, LineRow, OpportunityRow

__all__ = (
    "MAPPING_VERSIONS",
    "booking",
    "customer",
    "customer_code",
    "entity_code",
    "money",
    "record_id",
    "status_of",
)

MAPPING_VERSIONS = frozenset({"salesforce/v1"})
"""The mapping rules this module implements."""
_CODE = re.compile(CODE_PATTERN)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DESCRIPTION_MAX = 1024
_NAME_MAX = 256


def record_id(source: str, kind: str, salesforce_id: str) -> str:
    """finsync's id of a Salesforce record: ``{source}:{kind}:{Id}``."""
    return f"{source}:{kind}:{salesforce_id}"


def customer_code(account_number: str | None) -> str | None:
    """The business code an ``AccountNumber`` carries, when it fits a canonical code."""
    if account_number is None:
        return None
    code = account_number.strip()
    return code if _CODE.match(code) else None


def customer(source: str, mapping: str, account: AccountRow, currency: str | None) -> Customer | None:
    """The customer an account is; ``None`` when it carries no customer code. ``currency``: the org's, when
    it is not multi-currency."""
    code = customer_code(account.account_number)
    if code is None:
        return None
    country = (account.billing_country or "").strip()
    own_currency = account.currency_iso_code or currency
    return Customer(
        id=record_id(source, "customer", account.id),
        source=source,
        source_ref=account.id,
        modified_at=account.last_modified_date,
        deleted=account.is_deleted,
        mapping_version=mapping,
        code=code,
        name=_name(account.name),
        country=country if _COUNTRY.match(country) else None,
        currency=own_currency if own_currency and _CURRENCY.match(own_currency) else None,
    )


def booking(
    source: str,
    mapping: str,
    opportunity: OpportunityRow,
    lines: list[LineRow],
    account_number: str | None,
    currency: str | None,
) -> Booking:
    """The booking an opportunity is, with its ``lines`` (in the CRM's order) and its account's number.

    Raises:
        UpstreamContractError: the opportunity has no currency (and the source names none).
    """
    code = opportunity.currency_iso_code or currency
    if not code or not _CURRENCY.match(code):
        raise UpstreamContractError(
            f"the CRM's opportunity {opportunity.id} has no ISO currency ({code!r}); set the source's currency "
            "if the org is not multi-currency"
        )
    mapped = tuple(_line(line, opportunity.name, code) for line in lines)
    if opportunity.amount is not None:
        amount = money(opportunity.amount, code)
    else:
        amount = money(sum((line.amount for line in mapped), Decimal(0)), code)
    return Booking(
        id=record_id(source, "booking", opportunity.id),
        source=source,
        source_ref=opportunity.id,
        modified_at=max([opportunity.last_modified_date, *(line.last_modified_date for line in lines)]),
        deleted=opportunity.is_deleted,
        mapping_version=mapping,
        name=_name(opportunity.name),
        entity=_code(opportunity.legal_entity),
        customer=customer_code(account_number),
        customer_ref=opportunity.account_id,
        status=status_of(opportunity),
        stage=_name(opportunity.stage_name),
        close_date=opportunity.close_date,
        currency=code,
        amount=amount,
        probability=_rate(opportunity.probability),
        lines=mapped,
    )


def status_of(opportunity: OpportunityRow) -> BookingStatus:
    """Won, lost or open, as the opportunity's ``IsWon`` and ``IsClosed`` say."""
    if opportunity.is_won:
        return BookingStatus.WON
    return BookingStatus.LOST if opportunity.is_closed else BookingStatus.OPEN


def _line(line: LineRow, opportunity_name: str, currency: str) -> BookingLine:
    # Salesforce names a line item "{opportunity name} {product name}": the product's name is what follows.
    name = line.name or ""
    product_name = name.removeprefix(f"{opportunity_name} ") if name != opportunity_name else name
    return BookingLine(
        source_ref=line.id,
        product=_code(line.product_code),
        description=product_name[:_DESCRIPTION_MAX],
        quantity=_plain(line.quantity),
        unit_price=money(line.unit_price, currency),
        discount=_rate(line.discount),
        amount=money(line.total_price, currency),
        service_date=line.service_date,
    )


def money(value: Decimal, currency: str) -> Decimal:
    """``value`` to the minor unit of ``currency``, half up (as it is, in plain notation, for a currency
    finsync does not know).

    Raises:
        UpstreamContractError: ``value`` is not a finite number that fits.
    """
    places = MINOR_UNITS.get(currency)
    if places is None:
        return _plain(value)
    try:
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise UpstreamContractError(f"the CRM sent an amount that is no money: {value}") from exc


def _plain(value: Decimal) -> Decimal:
    """``value`` without an exponent (``1E+2`` is ``100``): the API writes decimals in plain notation."""
    if not value.is_finite():
        raise UpstreamContractError(f"the CRM sent a number that is not finite: {value}")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return value.quantize(Decimal(1)) if exponent > 0 else value


def _rate(percent: Decimal | None) -> Decimal | None:
    """A Salesforce percent (``15``) as a fraction (``0.15``)."""
    if percent is None:
        return None
    return _plain(_plain(percent).scaleb(-2).normalize())


def entity_code(value: str | None) -> str | None:
    """The legal entity's code a field holds, when it fits a canonical code."""
    return _code(value)


def _code(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value if _CODE.match(value) else None


def _name(value: str) -> str:
    """A name that fits the model: at most 256 characters, never empty."""
    return value[:_NAME_MAX] or "-"
