"""The in-memory org: records by sObject type, and the writes the control API and the seed make.

A record is a plain dict from API field name to a Python value: ``str``,
``bool``, ``Decimal``, ``datetime.date``, an aware UTC ``datetime``, or
``None``. Every field of the type is present. Writes go through one path
(:meth:`Org.insert`, :meth:`Org.update`) that checks the fields as Salesforce
would (unknown or read-only fields, required fields, picklists, references),
stamps ``LastModifiedDate`` and ``SystemModstamp``, and keeps the
opportunity's derived fields right:

- ``IsClosed``, ``IsWon``, ``ForecastCategoryName`` and, unless given,
  ``Probability`` follow ``StageName``;
- once an opportunity has line items, ``Amount`` is the sum of their
  ``TotalPrice`` and cannot be written;
- a line item's ``TotalPrice`` is ``Quantity * UnitPrice * (1 - Discount/100)``
  and its ``ListPrice`` comes from the price book entry of its product in the
  opportunity's currency.

Every change to an opportunity (its own fields or its line items) calls
``on_opportunity_change`` once with its id: that is the outbound message's
workflow rule ("created, and every time it's edited").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from system_apis.connectors.salesforce.sandbox.errors import (
    FieldIntegrityError,
    InvalidCrossReferenceKeyError,
    InvalidFieldForInsertUpdateError,
    InvalidPicklistError,
    JsonParserError,
    RequiredFieldMissingError,
)
from system_apis.connectors.salesforce.sandbox.ids import KEY_PREFIXES, IdFactory, canonical
from system_apis.connectors.salesforce.sandbox.schema import (
    OBJECTS,
    OPPORTUNITY,
    OPPORTUNITY_LINE_ITEM,
    STAGES,
    Field,
    FieldType,
    SObjectType,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from system_apis.connectors.salesforce.sandbox.clock import Clock

__all__ = ("CENT", "CURRENCIES", "Org", "Record")

Record = dict[str, Any]
"""One record: API field name to value."""
CENT = Decimal("0.01")
"""Money is kept to the cent."""
CURRENCIES = ("USD", "EUR")
"""The org's active currencies (a multi-currency org): the ERP companies' currencies."""
_PICKLISTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Opportunity", "StageName"): tuple(STAGES),
    ("Opportunity", "Type"): (
        "New Customer",
        "Existing Customer - Upgrade",
        "Existing Customer - Replacement",
    ),
    ("Account", "Type"): ("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
    ("Product2", "Family"): ("Services", "Goods"),
}
"""Restricted picklists and their values; ``CurrencyIsoCode`` takes :data:`CURRENCIES`, ``Legal_Entity__c`` the
entity codes the org was given."""


_BAD = object()
"""What a converter answers for a value that does not fit."""


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _as_text(raw: Any) -> Any:
    return raw if isinstance(raw, str) else _BAD


def _as_bool(raw: Any) -> Any:
    return raw if isinstance(raw, bool) else _BAD


def _as_decimal(raw: Any) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | str):
        return _BAD
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return _BAD
    return value if value.is_finite() else _BAD


def _as_date(raw: Any) -> Any:
    try:
        return dt.date.fromisoformat(raw) if isinstance(raw, str) else _BAD
    except ValueError:
        return _BAD


def _as_datetime(raw: Any) -> Any:
    try:
        value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return _BAD
    return value.astimezone(dt.UTC) if value is not None and value.tzinfo is not None else _BAD


_CONVERTERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.BOOLEAN: _as_bool,
    FieldType.CURRENCY: _as_decimal,
    FieldType.DOUBLE: _as_decimal,
    FieldType.PERCENT: _as_decimal,
    FieldType.DATE: _as_date,
    FieldType.DATETIME: _as_datetime,
}
"""JSON value to record value, by field type; text types take strings as they are."""


class Org:
    """Every record of the org, by type and id, in creation order."""

    def __init__(
        self,
        *,
        org_id: str,
        user_id: str,
        clock: Clock,
        entities: Mapping[str, str],
    ) -> None:
        """An empty org.

        Args:
            org_id: the 18-character organization id.
            user_id: the integration user's id: owner and modifier of every record.
            clock: what records are stamped with.
            entities: legal entity code (``Legal_Entity__c``) to its currency.
        """
        self.org_id = org_id
        """The organization id."""
        self.user_id = user_id
        """The one user's id."""
        self.clock = clock
        """The org's clock."""
        self.entities = dict(entities)
        """Legal entity code to currency."""
        self.ids = IdFactory()
        """Record ids, in creation order."""
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        """Records by type, then id."""
        self.pricebook_id = self.ids.new(KEY_PREFIXES["Pricebook2"])
        """The standard price book's id."""
        self.on_opportunity_change: Callable[[str], object] | None = None
        """Called with an opportunity's id after each change to it (the seed leaves it unset)."""
        self._lines: dict[str, list[str]] = {}
        self._entries: dict[tuple[str, str], Record] = {}
        self._products_by_code: dict[str, Record] = {}

    # -- reading -------------------------------------------------------------------------------------------

    def get(self, kind: str, record_id: str) -> Record | None:
        """The record of type ``kind`` with id ``record_id`` (15 or 18 characters, any case of 18), or ``None``."""
        table = self.tables[kind]
        found = table.get(record_id)
        if found is not None:
            return found
        full = canonical(record_id)
        return table.get(full) if full is not None else None

    def records(self, kind: str) -> Iterator[Record]:
        """Every record of type ``kind``, in creation order."""
        return iter(self.tables[kind].values())

    def count(self, kind: str) -> int:
        """How many records of type ``kind`` there are."""
        return len(self.tables[kind])

    def line_items(self, opportunity_id: str) -> list[Record]:
        """The line items of one opportunity, in sort order."""
        table = self.tables[OPPORTUNITY_LINE_ITEM.name]
        return [table[line] for line in self._lines.get(opportunity_id, ())]

    def product_by_code(self, code: str) -> Record | None:
        """The product whose ``ProductCode`` is ``code``."""
        return self._products_by_code.get(code)

    # -- checking input ------------------------------------------------------------------------------------

    @staticmethod
    def _coerce(kind: SObjectType, field: Field, raw: Any) -> Any:
        """A JSON value for ``field`` as the record keeps it.

        Raises:
            JsonParserError: the value's JSON type or format does not fit the field.
            InvalidCrossReferenceKeyError: a reference field's value is not an id.
        """
        if raw is None:
            return None
        if field.type.is_id:
            full = canonical(raw) if isinstance(raw, str) else None
            if full is None:
                raise InvalidCrossReferenceKeyError(f"invalid cross reference id: {raw}", (field.name,))
            return full
        value = _CONVERTERS.get(field.type, _as_text)(raw)
        if value is _BAD:
            raise JsonParserError(
                f"Cannot deserialize {raw!r} as the {field.type.value} field {kind.name}.{field.name}",
                (field.name,),
            )
        return value

    def _check(self, kind: SObjectType, values: Mapping[str, Any], *, creating: bool) -> Record:
        """``values`` as a record update: API names, coerced values, picklists and references checked.

        Raises:
            InvalidFieldForInsertUpdateError: a field is unknown or read-only.
            JsonParserError: a value does not fit its field.
            InvalidPicklistError: a value is not in its restricted picklist.
            InvalidCrossReferenceKeyError: a reference names no record of the right type.
        """
        checked: Record = {}
        for given, raw in values.items():
            field = kind.field(given)
            if field is None or not field.updateable:
                verb = "create" if creating else "update"
                raise InvalidFieldForInsertUpdateError(
                    f"Unable to {verb} fields: {given}. Please check the security settings of this field and "
                    "verify that it is read/write for your profile or permission set.",
                    (given,),
                )
            value = self._coerce(kind, field, raw)
            allowed = self._picklist(kind, field)
            if allowed is not None and value is not None and value not in allowed:
                raise InvalidPicklistError(
                    f"{field.name}: bad value for restricted picklist field: {value}", (field.name,)
                )
            if (
                field.references is not None
                and value is not None
                and not self._exists(field.references, value)
            ):
                raise InvalidCrossReferenceKeyError(
                    f"invalid cross reference id: {value} is no {field.references}", (field.name,)
                )
            checked[field.name] = value
        return checked

    def _exists(self, kind_name: str, record_id: str) -> bool:
        """Whether ``record_id`` names a record of type ``kind_name`` (the one user and price book included)."""
        if kind_name == "User":
            return record_id == self.user_id
        if kind_name == "Pricebook2":
            return record_id == self.pricebook_id
        return self.get(kind_name, record_id) is not None

    def _picklist(self, kind: SObjectType, field: Field) -> tuple[str, ...] | None:
        """The values a restricted picklist takes, or ``None`` when ``field`` is not one."""
        if field.name == "CurrencyIsoCode":
            return CURRENCIES
        if field.name == "Legal_Entity__c":
            return tuple(self.entities)
        return _PICKLISTS.get((kind.name, field.name))

    # -- writing -------------------------------------------------------------------------------------------

    def insert(
        self, kind_name: str, values: Mapping[str, Any], *, stamp: dt.datetime | None = None
    ) -> Record:
        """Create a record of type ``kind_name`` from API field values; ``stamp`` overrides the clock (the seed).

        Opportunities and their line items have their own entry points
        (:meth:`create_opportunity`, :meth:`add_line_item`), which call this.

        Raises:
            SalesforceError: a field is unknown, read-only, missing, or has a bad value.
        """
        kind = OBJECTS[kind_name]
        checked = self._check(kind, values, creating=True)
        return self._store(kind, checked, stamp)

    def _store(self, kind: SObjectType, checked: Record, stamp: dt.datetime | None) -> Record:
        """Fill in defaults and system fields, check required fields, and keep the new record."""
        record: Record = dict.fromkeys(field.name for field in kind.fields)
        record.update(checked)
        for field in kind.fields:
            if field.type is FieldType.BOOLEAN and record[field.name] is None:
                record[field.name] = False
        if "OwnerId" in record and record["OwnerId"] is None:
            record["OwnerId"] = self.user_id
        missing = [field.name for field in kind.fields if field.required and record[field.name] is None]
        if missing:
            raise RequiredFieldMissingError(
                f"Required fields are missing: [{', '.join(missing)}]", tuple(missing)
            )
        when = stamp or self.clock.now()
        record_id = self.ids.new(KEY_PREFIXES[kind.name])
        record.update(
            Id=record_id,
            CreatedDate=when,
            CreatedById=self.user_id,
            LastModifiedDate=when,
            LastModifiedById=self.user_id,
            SystemModstamp=when,
        )
        self.tables[kind.name][record_id] = record
        if kind.name == "Product2" and record["ProductCode"]:
            self._products_by_code[record["ProductCode"]] = record
        if kind.name == "PricebookEntry":
            self._entries[record["Product2Id"], record["CurrencyIsoCode"]] = record
        return record

    def add_price(
        self, product_id: str, currency: str, price: Decimal, *, stamp: dt.datetime | None = None
    ) -> Record:
        """The standard price book's entry for a product in ``currency`` (the seed's; entries are not edited)."""
        product = self._existing("Product2", product_id)
        entry = {
            "Name": product["Name"],
            "Pricebook2Id": self.pricebook_id,
            "Product2Id": product["Id"],
            "ProductCode": product["ProductCode"],
            "CurrencyIsoCode": currency,
            "UnitPrice": _money(price),
            "IsActive": True,
        }
        return self._store(OBJECTS["PricebookEntry"], entry, stamp)

    def update(self, kind_name: str, record_id: str, values: Mapping[str, Any]) -> Record:
        """Change fields of an account (opportunities: :meth:`update_opportunity`).

        Raises:
            InvalidCrossReferenceKeyError: there is no such record.
            SalesforceError: a field is unknown, read-only, or has a bad value.
        """
        kind = OBJECTS[kind_name]
        record = self._existing(kind.name, record_id)
        record.update(self._check(kind, values, creating=False))
        self._touch(record)
        return record

    def _existing(self, kind_name: str, record_id: str) -> Record:
        record = self.get(kind_name, record_id)
        if record is None:
            raise InvalidCrossReferenceKeyError(
                f"invalid cross reference id: no {kind_name} {record_id}", ("Id",)
            )
        return record

    def _touch(self, record: Record, stamp: dt.datetime | None = None) -> None:
        when = stamp or self.clock.now()
        record.update(LastModifiedDate=when, LastModifiedById=self.user_id, SystemModstamp=when)

    # -- opportunities -------------------------------------------------------------------------------------

    def create_opportunity(
        self,
        values: Mapping[str, Any],
        lines: Sequence[Mapping[str, Any]] | None = None,
        *,
        stamp: dt.datetime | None = None,
    ) -> Record:
        """Create an opportunity and, when given, its line items; one change notification in all.

        The currency defaults to the legal entity's, else the account's.

        Raises:
            SalesforceError: a field or line item is refused; nothing is created then.
        """
        checked = self._check(OPPORTUNITY, values, creating=True)
        if checked.get("Amount") is not None and lines:
            raise FieldIntegrityError("Cannot set Amount on an opportunity with products", ("Amount",))
        if checked.get("CurrencyIsoCode") is None:
            entity = checked.get("Legal_Entity__c")
            account = self.get("Account", checked["AccountId"]) if checked.get("AccountId") else None
            currency = self.entities.get(entity) if entity else None
            checked["CurrencyIsoCode"] = currency or (account or {}).get("CurrencyIsoCode") or CURRENCIES[0]
        # Check every line before creating anything, so a refused line leaves no half-made opportunity.
        prepared = [self._prepare_line(checked["CurrencyIsoCode"], line) for line in lines or ()]
        checked["Pricebook2Id"] = self.pricebook_id if prepared else None
        self._derive_stage(checked, explicit_probability="Probability" in checked)
        record = self._store(OPPORTUNITY, checked, stamp)
        for index, line in enumerate(prepared, start=1):
            self._store_line(record, line, index, stamp)
        self._roll_up(record)
        self._changed(record)
        return record

    def update_opportunity(self, record_id: str, values: Mapping[str, Any]) -> Record:
        """Change fields of an opportunity (``{"StageName": "Closed Won"}`` closes it as won).

        Raises:
            InvalidCrossReferenceKeyError: there is no such opportunity.
            SalesforceError: a field is refused.
        """
        record = self._existing(OPPORTUNITY.name, record_id)
        checked = self._check(OPPORTUNITY, values, creating=False)
        has_lines = bool(self._lines.get(record["Id"]))
        if has_lines and "Amount" in checked:
            raise FieldIntegrityError("Cannot change Amount on an opportunity with products", ("Amount",))
        currency = checked.get("CurrencyIsoCode", record["CurrencyIsoCode"])
        if has_lines and currency != record["CurrencyIsoCode"]:
            raise FieldIntegrityError(
                "Cannot change the currency of an opportunity with products", ("CurrencyIsoCode",)
            )
        for name in ("AccountId", "Name", "StageName", "CloseDate"):
            if name in checked and checked[name] is None:
                raise RequiredFieldMissingError(f"Required fields are missing: [{name}]", (name,))
        stage_changed = "StageName" in checked and checked["StageName"] != record["StageName"]
        record.update(checked)
        if stage_changed or "Probability" in checked:
            self._derive_stage(record, explicit_probability="Probability" in checked)
        self._touch(record)
        self._changed(record)
        return record

    def add_line_item(self, opportunity_id: str, values: Mapping[str, Any]) -> Record:
        """Add a product to an opportunity; its ``Amount`` follows.

        The product is named by ``Product2Id``, ``PricebookEntryId`` or
        ``ProductCode``; ``UnitPrice`` defaults to the price book's.

        Raises:
            InvalidCrossReferenceKeyError: there is no such opportunity or product.
            SalesforceError: a field is refused.
        """
        opportunity = self._existing(OPPORTUNITY.name, opportunity_id)
        line = self._prepare_line(opportunity["CurrencyIsoCode"], values)
        if opportunity["Pricebook2Id"] is None:
            opportunity["Pricebook2Id"] = self.pricebook_id
        stored = self._store_line(opportunity, line, len(self._lines.get(opportunity["Id"], ())) + 1, None)
        self._roll_up(opportunity)
        self._touch(opportunity)
        self._changed(opportunity)
        return stored

    def _prepare_line(self, currency: str, values: Mapping[str, Any]) -> Record:
        """A line item's fields before it is stored: product and price book entry resolved, prices computed."""
        given = dict(values)
        code = given.pop("ProductCode", None)
        entry_id = given.pop("PricebookEntryId", None)
        product_id = given.pop("Product2Id", None)
        product: Record | None = None
        if product_id is not None:
            product = self.get("Product2", str(product_id))
        elif entry_id is not None:
            entry = self.get("PricebookEntry", str(entry_id))
            product = self.get("Product2", entry["Product2Id"]) if entry is not None else None
        elif code is not None:
            product = self._products_by_code.get(str(code))
        else:
            raise RequiredFieldMissingError(
                "Required fields are missing: [PricebookEntryId]", ("PricebookEntryId",)
            )
        if product is None:
            named = product_id or entry_id or code
            raise InvalidCrossReferenceKeyError(
                f"invalid cross reference id: no product {named}", ("Product2Id",)
            )
        entry = self._entries.get((product["Id"], currency))
        if entry is None:
            raise FieldIntegrityError(
                "field integrity exception: PricebookEntryId (pricebook entry currency code does not match "
                "opportunity currency code)",
                ("PricebookEntryId",),
            )
        checked = self._check(OPPORTUNITY_LINE_ITEM, given, creating=True)
        quantity = checked.get("Quantity")
        if quantity is None or quantity <= 0:
            raise FieldIntegrityError("Quantity must be positive", ("Quantity",))
        unit_price = checked.get("UnitPrice")
        if unit_price is None:
            unit_price = entry["UnitPrice"]
        discount = checked.get("Discount") or Decimal(0)
        checked.update(
            PricebookEntryId=entry["Id"],
            Product2Id=product["Id"],
            ProductCode=product["ProductCode"],
            CurrencyIsoCode=currency,
            UnitPrice=_money(unit_price),
            ListPrice=entry["UnitPrice"],
            TotalPrice=_money(quantity * unit_price * (1 - discount / 100)),
            Quantity=quantity,
        )
        checked["_product_name"] = product["Name"]
        return checked

    def _store_line(
        self, opportunity: Record, line: Record, sort_order: int, stamp: dt.datetime | None
    ) -> Record:
        line = dict(line)
        product_name = line.pop("_product_name")
        line.update(
            OpportunityId=opportunity["Id"],
            Name=f"{opportunity['Name']} {product_name}",
            SortOrder=Decimal(sort_order),
        )
        stored = self._store(OPPORTUNITY_LINE_ITEM, line, stamp)
        self._lines.setdefault(opportunity["Id"], []).append(stored["Id"])
        return stored

    def _roll_up(self, opportunity: Record) -> None:
        """``Amount`` and ``HasOpportunityLineItem`` from the line items, once there are any."""
        lines = self.line_items(opportunity["Id"])
        opportunity["HasOpportunityLineItem"] = bool(lines)
        if lines:
            opportunity["Amount"] = _money(sum((line["TotalPrice"] for line in lines), Decimal(0)))

    @staticmethod
    def _derive_stage(record: Record, *, explicit_probability: bool) -> None:
        """``IsClosed``, ``IsWon``, ``ForecastCategoryName`` and (unless given) ``Probability`` from the stage."""
        stage = STAGES.get(record.get("StageName") or "")
        if stage is None:
            return
        record.update(IsClosed=stage.closed, IsWon=stage.won, ForecastCategoryName=stage.forecast)
        if not explicit_probability or record.get("Probability") is None:
            record["Probability"] = stage.probability

    def _changed(self, opportunity: Record) -> None:
        if self.on_opportunity_change is not None:
            self.on_opportunity_change(opportunity["Id"])
