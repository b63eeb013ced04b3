"""JSON round trips of every canonical type, and decoding that takes money only as strings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from shared import canonical as c
from tests.unit.test_canonical.samples import BALANCED_USD, every_type, record

SAMPLES = every_type()
NESTED = {
    c.JournalLine,
    c.InvoiceLine,
    c.InvoiceLineCreate,
    c.DocumentRef,
    c.LoadRow,
    c.LoadCounts,
    c.LoadFailure,
    c.BookingLine,
    c.BillingInvoiceLine,
    c.BillingInvoiceLineCreate,
}
BASES = {c.CanonicalStruct, c.Record, c.CreatePayload}


def _decimals(value: Any, path: str = "$") -> list[tuple[str, Decimal]]:
    """Every Decimal inside a Struct, with its JSON path."""
    found: list[tuple[str, Decimal]] = []
    if isinstance(value, Decimal):
        found.append((path, value))
    elif isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            found += _decimals(getattr(value, field.name), f"{path}.{field.encode_name}")
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            found += _decimals(item, f"{path}[{index}]")
    return found


def _at(document: Any, path: str) -> Any:
    for part in path.removeprefix("$").replace("[", ".").replace("]", "").split(".")[1:]:
        document = document[int(part)] if part.isdigit() else document[part]
    return document


def test_the_samples_cover_every_canonical_struct() -> None:
    public = {
        obj
        for name in c.__all__
        if isinstance(obj := getattr(c, name), type) and issubclass(obj, msgspec.Struct)
    }
    assert public - BASES - NESTED == {type(sample) for sample in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_round_trip_keeps_money_a_string_in_json_and_a_decimal_in_python(sample: Any) -> None:
    data = c.encode(sample)
    decoded = c.decode(data, type(sample))
    assert decoded == sample
    assert c.encode(decoded) == data
    document = json.loads(data)
    money = _decimals(sample)
    for path, amount in money:
        assert isinstance(_at(document, path), str), path
        assert _at(document, path) == str(amount)
    for path, amount in _decimals(decoded):
        assert type(amount) is Decimal, path
    # Exactness: the string keeps every digit, trailing zeros included.
    assert [str(amount) for _, amount in _decimals(decoded)] == [str(amount) for _, amount in money]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_every_field_is_written_and_named_in_snake_case(sample: Any) -> None:
    document = json.loads(c.encode(sample))
    assert list(document) == [field.encode_name for field in msgspec.structs.fields(sample)]
    assert all(name == name.lower() for name in document)


def test_a_record_has_the_common_fields() -> None:
    for sample in SAMPLES:
        if isinstance(sample, c.Record):
            document = json.loads(c.encode(sample))
            for name in (
                "id",
                "source",
                "source_ref",
                "external_ref",
                "modified_at",
                "deleted",
                "mapping_version",
            ):
                assert name in document, (type(sample).__name__, name)
            assert document["modified_at"].endswith("Z")


@pytest.mark.parametrize("number", [b"1250.5", b"1250", b"1.25e3"])
def test_money_as_a_json_number_is_refused(number: bytes) -> None:
    data = c.encode(BALANCED_USD).replace(b'"debit":"1250.00"', b'"debit":' + number, 1)
    assert data != c.encode(BALANCED_USD)
    # msgspec alone would take it: that is why decoding goes through the canonical codec.
    assert msgspec.json.decode(data, type=c.JournalEntryCreate).lines[0].debit == Decimal(number.decode())
    with pytest.raises(msgspec.ValidationError, match=r"got `(float|int)` - at `\$\.lines\[0\]\.debit`"):
        c.decode(data, c.JournalEntryCreate)


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "1e3", "1,000.00", " 1.00", "+1.00", "", "1." + "0" * 40]
)
def test_money_strings_that_are_not_plain_decimals_are_refused(text: str) -> None:
    data = c.encode(BALANCED_USD).replace(b'"debit":"1250.00"', f'"debit":"{text}"'.encode(), 1)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.lines\[0\]\.debit"):
        c.decode(data, c.JournalEntryCreate)


def test_money_inside_optional_and_nested_fields_is_checked_too() -> None:
    payment = next(sample for sample in SAMPLES if isinstance(sample, c.PaymentCreate))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.amount"):
        c.decode(c.encode(payment).replace(b'"2250.00"', b"2250.0"), c.PaymentCreate)
    rate = next(sample for sample in SAMPLES if isinstance(sample, c.TaxCode))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.rate"):
        c.decode(c.encode(rate).replace(b'"0.2"', b"0.2"), c.TaxCode)
    assert c.decode(b'["1.50", null]', list[c.Amount | None]) == [Decimal("1.50"), None]
    with pytest.raises(msgspec.ValidationError, match=r"\$\[0\]"):
        c.decode(b"[1.5]", list[c.Amount])


def test_a_decoder_without_money_adds_no_second_pass() -> None:
    decoder = c.Decoder(c.CostCenter)
    assert decoder._check is None
    assert c.Decoder(c.JournalEntryCreate)._check is not None


def test_unknown_fields_and_bad_shapes_are_refused() -> None:
    document = json.loads(c.encode(BALANCED_USD))
    document["lines"][1]["amount"] = "1.00"
    with pytest.raises(msgspec.ValidationError, match=r"unknown field `amount`"):
        c.decode(json.dumps(document), c.JournalEntryCreate)
    for field, value in (
        ("currency", "usd"),
        ("currency", "USDX"),
        ("account_code", ""),
        ("account_code", "61 00"),
    ):
        document = json.loads(c.encode(BALANCED_USD))
        document["lines"][0][field] = value
        with pytest.raises(msgspec.ValidationError, match=rf"\$\.lines\[0\]\.{field}"):
            c.decode(json.dumps(document), c.JournalEntryCreate)


def test_creates_require_an_external_ref() -> None:
    document = json.loads(c.encode(BALANCED_USD))
    del document["external_ref"]
    with pytest.raises(msgspec.ValidationError, match="missing required field `external_ref`"):
        c.decode(json.dumps(document), c.JournalEntryCreate)
    for create in (c.InvoiceCreate, c.PaymentCreate, c.CustomerCreate, c.SupplierCreate):
        fields = {field.name: field for field in msgspec.structs.fields(create)}
        assert fields["external_ref"].required
        assert not {"id", "source", "modified_at"} & set(fields)


def test_an_oversized_entry_is_refused_by_the_schema() -> None:
    document = json.loads(c.encode(BALANCED_USD))
    document["lines"] = document["lines"] * (c.MAX_JOURNAL_LINES // 2 + 1)
    with pytest.raises(msgspec.ValidationError, match=rf"length <= {c.MAX_JOURNAL_LINES}.*\$\.lines"):
        c.decode(json.dumps(document), c.JournalEntryCreate)


def test_modified_at_is_normalised_to_utc_and_must_carry_a_zone() -> None:
    sample = next(sample for sample in SAMPLES if isinstance(sample, c.CostCenter))
    written = c.encode(sample)
    assert b'"modified_at":"2026-03-31T17:45:12.345000Z"' in written
    data = written.replace(b"T17:45:12.345000Z", b"T19:45:12.345+02:00")
    decoded = c.decode(data, c.CostCenter)
    assert decoded.modified_at == sample.modified_at
    assert decoded.modified_at.tzinfo is UTC
    assert c.encode(decoded) == c.encode(sample)
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        c.decode(written.replace(b"12.345000Z", b"12.345"), c.CostCenter)
    naive = {**record("cost-center"), "modified_at": datetime(2026, 3, 31, 17, 45)}  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        c.CostCenter(**naive, code="CC-1", name="Sales", entity="US")


def test_records_that_break_business_rules_still_read() -> None:
    """Reading never applies business rules: a posted entry the ERP holds decodes whatever it looks like."""
    lines = tuple(
        c.JournalLine(account_code="1000", debit=Decimal("0.001"), credit=Decimal(0), currency="XYZ")
        for _ in range(c.MAX_JOURNAL_LINES + 1)
    )
    entry = c.JournalEntry(
        **record("move"),
        entity="US",
        posting_date=BALANCED_USD.posting_date,
        state=c.EntryState.POSTED,
        lines=lines,
    )
    assert c.decode(c.encode(entry), c.JournalEntry) == entry
