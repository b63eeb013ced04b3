"""Constrained field types shared by the canonical Structs: codes, references, names and times.

Every constraint here is about shape only (a pattern, a length, a time zone), so
a record that a source holds always decodes. Business rules live in
:mod:`shared.canonical.validation`.

References between records are by code: a field named after the thing it points
to (``entity``, ``period``, ``cost_center``, ``party``) holds that thing's code;
``account_code`` keeps its suffix because an account has a code and an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta

__all__ = (
    "CODE_PATTERN",
    "Code",
    "CostCenterOrUnallocated",
    "CountryCode",
    "Description",
    "DocumentNumber",
    "ExternalRef",
    "MappingVersion",
    "Name",
    "PeriodCode",
    "RecordId",
    "SourceId",
    "SourceRef",
    "TaxId",
    "TimeZone",
    "UtcDateTime",
)

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
"""A code: a letter or digit, then letters, digits, ``. _ : / -``; at most 64 characters, no spaces."""

Code = Annotated[
    str,
    Meta(
        pattern=CODE_PATTERN,
        description="A business code: letters, digits and . _ : / -, at most 64.",
        examples=["4000"],
    ),
]
"""The code of a master-data record, or a reference to one by its code.

Its ``Meta`` description is generic on purpose: it lands on every field of this
type in the OpenAPI spec, the references included.
"""

CostCenterOrUnallocated = Annotated[
    str,
    Meta(
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._:/-]{0,63})?$",
        description='Cost centre code; "" is the unallocated remainder.',
        examples=["CC-100", ""],
    ),
]
"""A cost-centre code where the empty string stands for "no cost centre" (the unallocated remainder)."""

PeriodCode = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        description="Fiscal period code: YYYY-MM of the month the period starts in.",
        examples=["2026-03"],
    ),
]
"""A fiscal period, coded by the calendar month it starts in (``2026-03``)."""

RecordId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=256,
        description="The id of a finsync record; opaque.",
        examples=["erp-us:move:42"],
    ),
]
"""finsync's id of a record: opaque, stable, unique among the records of one type."""

SourceId = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9-]{0,62}$",
        description="Id of the configured source the record comes from.",
        examples=["erp-us"],
    ),
]
"""The id of a configured source (``erp-us``), as in the settings' ``sources`` table."""

SourceRef = Annotated[
    str,
    Meta(min_length=1, max_length=256, description="The record's own id in its source.", examples=["42"]),
]
"""The record's id inside its source system (Tryton's integer id as a string, a Stripe id)."""

ExternalRef = Annotated[
    str,
    Meta(
        pattern=r"^[!-~]{1,128}$",
        description="A business identity, unique per legal entity in the source; printable ASCII, no spaces.",
        examples=["crm:opportunity:0065g00000XyZ1:invoice"],
    ),
]
"""The business identity of an effect. The source enforces it as unique, so a replayed create cannot post twice."""

MappingVersion = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description="Version of the mapping rules that produced the record.",
        examples=["tryton/v1"],
    ),
]
"""Which versioned mapping rules produced the record (``tryton/v1``)."""

Name = Annotated[str, Meta(min_length=1, max_length=256, description="Display name.", examples=["Revenue"])]
"""A human name."""

Description = Annotated[str, Meta(max_length=1024, description="Free text.")]
"""Free text, such as a journal line's description."""

DocumentNumber = Annotated[
    str, Meta(min_length=1, max_length=64, description="Document number.", examples=["INV-2026-00042"])
]
"""A document's number, such as an invoice number assigned by the ERP or a supplier's own."""

CountryCode = Annotated[
    str, Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code.", examples=["US"])
]
"""An ISO 3166-1 alpha-2 country code."""

TaxId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description="Tax identifier, such as a VAT number.",
        examples=["DE123456789"],
    ),
]
"""A party's tax identifier."""

TimeZone = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$",
        max_length=64,
        description="IANA time zone name.",
        examples=["America/New_York"],
    ),
]
"""An IANA time zone name, such as ``Europe/Paris``; days are cut in it for reconciliation."""

UtcDateTime = Annotated[
    datetime,
    Meta(tz=True, description="RFC 3339 date-time in UTC.", examples=["2026-03-31T17:45:00Z"]),
]
"""A timezone-aware datetime; records normalise it to UTC."""
