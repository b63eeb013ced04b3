"""The sObject types the sandbox's org holds, with their fields and types, and the Opportunity stage picklist.

Field names are Salesforce's API names. SOQL and the REST API find a field or
a type whatever its case (``amount`` is ``Amount``); answers always use the
API name. ``Legal_Entity__c`` is the sandbox org's one custom field: which
ERP company (``FS-US``, ``FS-EU``) books the opportunity's sale.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

__all__ = (
    "ACCOUNT",
    "OBJECTS",
    "OPPORTUNITY",
    "OPPORTUNITY_LINE_ITEM",
    "PRICEBOOK_ENTRY",
    "PRODUCT2",
    "STAGES",
    "Field",
    "FieldType",
    "SObjectType",
    "Stage",
    "object_type",
)


class FieldType(enum.Enum):
    """How a field's values are typed, written in SOQL and encoded; the value is the name SOQL errors use."""

    ID = "id"
    REFERENCE = "reference"
    STRING = "string"
    TEXTAREA = "textarea"
    PICKLIST = "picklist"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "dateTime"
    CURRENCY = "currency"
    DOUBLE = "double"
    PERCENT = "percent"

    @property
    def is_text(self) -> bool:
        """Compared as text, case-insensitively, and written as quoted strings."""
        return self in _TEXT_TYPES

    @property
    def is_id(self) -> bool:
        """Holds record ids (compared in their 18-character form)."""
        return self in _ID_TYPES

    @property
    def is_number(self) -> bool:
        """A ``Decimal`` written as an unquoted number."""
        return self in _NUMBER_TYPES


_TEXT_TYPES = frozenset({FieldType.STRING, FieldType.TEXTAREA, FieldType.PICKLIST})
_ID_TYPES = frozenset({FieldType.ID, FieldType.REFERENCE})
_NUMBER_TYPES = frozenset({FieldType.CURRENCY, FieldType.DOUBLE, FieldType.PERCENT})


@dataclass(frozen=True)
class Field:
    """One field of an sObject type."""

    name: str
    """Its API name."""
    type: FieldType
    """Its type."""
    updateable: bool = True
    """Whether a create or update may set it (system fields and roll-ups may not)."""
    references: str | None = None
    """For a reference field, the sObject type it points at."""
    required: bool = False
    """Whether a create must set it."""


@dataclass(frozen=True)
class SObjectType:
    """An sObject type and its fields, in the order a record shows them."""

    name: str
    """Its API name, e.g. ``Opportunity``."""
    fields: tuple[Field, ...]
    """Its fields; ``Id`` first."""

    def field(self, name: str) -> Field | None:
        """The field called ``name`` in any case, or ``None``."""
        return _FIELDS[self.name].get(name.lower())


def _system(*fields: Field) -> tuple[Field, ...]:
    """``Id`` and ``IsDeleted``, the given fields, then the system stamps every record has."""
    return (
        Field("Id", FieldType.ID, updateable=False),
        Field("IsDeleted", FieldType.BOOLEAN, updateable=False),
        *fields,
        Field("CreatedDate", FieldType.DATETIME, updateable=False),
        Field("CreatedById", FieldType.REFERENCE, updateable=False, references="User"),
        Field("LastModifiedDate", FieldType.DATETIME, updateable=False),
        Field("LastModifiedById", FieldType.REFERENCE, updateable=False, references="User"),
        Field("SystemModstamp", FieldType.DATETIME, updateable=False),
    )


_CURRENCY = Field("CurrencyIsoCode", FieldType.PICKLIST)

ACCOUNT = SObjectType(
    "Account",
    _system(
        Field("Name", FieldType.STRING, required=True),
        Field("AccountNumber", FieldType.STRING),
        Field("Type", FieldType.PICKLIST),
        Field("Industry", FieldType.PICKLIST),
        Field("BillingStreet", FieldType.TEXTAREA),
        Field("BillingCity", FieldType.STRING),
        Field("BillingCountry", FieldType.STRING),
        _CURRENCY,
        Field("OwnerId", FieldType.REFERENCE, references="User"),
    ),
)
"""Accounts: the ERP's customers, their ERP party code in ``AccountNumber``."""

OPPORTUNITY = SObjectType(
    "Opportunity",
    _system(
        Field("AccountId", FieldType.REFERENCE, references="Account", required=True),
        Field("Name", FieldType.STRING, required=True),
        Field("Description", FieldType.TEXTAREA),
        Field("StageName", FieldType.PICKLIST, required=True),
        Field("Amount", FieldType.CURRENCY),
        Field("Probability", FieldType.PERCENT),
        Field("CloseDate", FieldType.DATE, required=True),
        Field("Type", FieldType.PICKLIST),
        Field("IsClosed", FieldType.BOOLEAN, updateable=False),
        Field("IsWon", FieldType.BOOLEAN, updateable=False),
        Field("ForecastCategoryName", FieldType.PICKLIST, updateable=False),
        _CURRENCY,
        Field("HasOpportunityLineItem", FieldType.BOOLEAN, updateable=False),
        Field("Pricebook2Id", FieldType.REFERENCE, updateable=False, references="Pricebook2"),
        Field("OwnerId", FieldType.REFERENCE, references="User"),
        Field("Legal_Entity__c", FieldType.PICKLIST),
    ),
)
"""Opportunities; ``Amount`` is the sum of the line items' ``TotalPrice`` once it has any."""

OPPORTUNITY_LINE_ITEM = SObjectType(
    "OpportunityLineItem",
    _system(
        Field("OpportunityId", FieldType.REFERENCE, updateable=False, references="Opportunity"),
        Field("SortOrder", FieldType.DOUBLE, updateable=False),
        Field("PricebookEntryId", FieldType.REFERENCE, updateable=False, references="PricebookEntry"),
        Field("Product2Id", FieldType.REFERENCE, updateable=False, references="Product2"),
        Field("ProductCode", FieldType.STRING, updateable=False),
        Field("Name", FieldType.STRING, updateable=False),
        _CURRENCY,
        Field("Quantity", FieldType.DOUBLE, required=True),
        Field("TotalPrice", FieldType.CURRENCY, updateable=False),
        Field("UnitPrice", FieldType.CURRENCY),
        Field("ListPrice", FieldType.CURRENCY, updateable=False),
        Field("ServiceDate", FieldType.DATE),
        Field("Discount", FieldType.PERCENT),
        Field("Description", FieldType.STRING),
    ),
)
"""Opportunity products; ``TotalPrice`` is ``Quantity * UnitPrice`` less ``Discount`` percent."""

PRODUCT2 = SObjectType(
    "Product2",
    _system(
        Field("Name", FieldType.STRING, required=True),
        Field("ProductCode", FieldType.STRING),
        Field("Description", FieldType.TEXTAREA),
        Field("Family", FieldType.PICKLIST),
        Field("IsActive", FieldType.BOOLEAN),
    ),
)
"""Products: the ERP's, their ERP code in ``ProductCode``."""

PRICEBOOK_ENTRY = SObjectType(
    "PricebookEntry",
    _system(
        Field("Name", FieldType.STRING, updateable=False),
        Field("Pricebook2Id", FieldType.REFERENCE, updateable=False, references="Pricebook2"),
        Field("Product2Id", FieldType.REFERENCE, updateable=False, references="Product2"),
        Field("ProductCode", FieldType.STRING, updateable=False),
        _CURRENCY,
        Field("UnitPrice", FieldType.CURRENCY),
        Field("IsActive", FieldType.BOOLEAN),
    ),
)
"""The standard price book's entries: one per product and currency."""

OBJECTS = {
    kind.name: kind for kind in (ACCOUNT, OPPORTUNITY, OPPORTUNITY_LINE_ITEM, PRODUCT2, PRICEBOOK_ENTRY)
}
"""Every sObject type, by API name."""
_BY_LOWER = {name.lower(): kind for name, kind in OBJECTS.items()}
_FIELDS = {kind.name: {field.name.lower(): field for field in kind.fields} for kind in OBJECTS.values()}


def object_type(name: str) -> SObjectType | None:
    """The sObject type called ``name`` in any case, or ``None``."""
    return _BY_LOWER.get(name.lower())


@dataclass(frozen=True)
class Stage:
    """A value of the Opportunity ``StageName`` picklist and what it implies."""

    name: str
    """The picklist value."""
    probability: Decimal
    """Default ``Probability`` (percent)."""
    closed: bool
    """``IsClosed``."""
    won: bool
    """``IsWon``."""
    forecast: str
    """``ForecastCategoryName``."""


STAGES = {
    stage.name: stage
    for stage in (
        Stage("Prospecting", Decimal(10), closed=False, won=False, forecast="Pipeline"),
        Stage("Qualification", Decimal(10), closed=False, won=False, forecast="Pipeline"),
        Stage("Needs Analysis", Decimal(20), closed=False, won=False, forecast="Pipeline"),
        Stage("Value Proposition", Decimal(50), closed=False, won=False, forecast="Pipeline"),
        Stage("Id. Decision Makers", Decimal(60), closed=False, won=False, forecast="Pipeline"),
        Stage("Perception Analysis", Decimal(70), closed=False, won=False, forecast="Pipeline"),
        Stage("Proposal/Price Quote", Decimal(75), closed=False, won=False, forecast="Pipeline"),
        Stage("Negotiation/Review", Decimal(90), closed=False, won=False, forecast="Pipeline"),
        Stage("Closed Won", Decimal(100), closed=True, won=True, forecast="Closed"),
        Stage("Closed Lost", Decimal(0), closed=True, won=False, forecast="Omitted"),
    )
}
"""Salesforce's default opportunity stages, in sales order."""
