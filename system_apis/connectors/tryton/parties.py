"""Customers and suppliers: their canonical records, and their creation by external reference.

A party is created with the payload's ``external_ref``, which the finsync Tryton
module makes unique in the database (parties are shared by every company), in
the mapping's category of the role (``Customers`` or ``Suppliers``). So:

- the same reference again answers the party already there (200), whatever
  happened to the first answer; two racing requests make one party;
- the reference with another name or code, or used by a party of the other role,
  is a conflict (409): the reference names another business identity.

The tax id is kept as a party identifier, and the country on the party's
address, so both read back as the ERP holds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.canonical import Customer, CustomerCreate, Supplier, SupplierCreate, validate_party
from shared.errors import (
    ConflictError,
    InvalidEntryError,
    SourceRejectedError,
    UpstreamContractError,
    Violation,
)
from system_apis.connectors.tryton import rows
from system_apis.connectors.tryton.checks import text_violations
from system_apis.connectors.tryton.rpc import TrytonUserError
from system_apis.connectors.tryton.written import Written, call_write

if TYPE_CHECKING:
    from system_apis.connectors.tryton.connector import TrytonConnector

__all__ = ("create_party", "party_records")


async def party_records(
    connector: TrytonConnector, role: str, parties: list[rows.PartyRow]
) -> list[Customer | Supplier]:
    """The canonical customers (``role="customer"``) or suppliers of ``parties``, with tax id and country."""
    if not parties:
        return []
    ids = [party.id for party in parties]
    identifiers = await connector.search_all(
        "party.identifier", [("party", "in", ids)], rows.IdentifierRow, {"active_test": False}
    )
    addresses = await connector.search_all(
        "party.address", [("party", "in", ids)], rows.AddressRow, {"active_test": False}
    )
    tax_ids: dict[int, str] = {}
    for identifier in identifiers:
        tax_ids.setdefault(identifier.party, identifier.code)
    countries: dict[int, str] = {}
    for address in addresses:
        if address.country_ is not None and address.country_.code:
            countries.setdefault(address.party, address.country_.code)
    kind: type[Customer | Supplier] = Customer if role == "customer" else Supplier
    return [
        kind(
            id=connector.record_id(role, party.id),
            source=connector.source,
            source_ref=f"party.party,{party.id}",
            external_ref=party.external_ref,
            modified_at=(party.write_date or party.create_date).value(),
            deleted=not party.active,
            mapping_version=connector.rules.version,
            code=party.code or str(party.id),
            name=party.name,
            tax_id=tax_ids.get(party.id),
            country=countries.get(party.id),
        )
        for party in parties
    ]


async def create_party(
    connector: TrytonConnector, role: str, payload: CustomerCreate | SupplierCreate
) -> Written[Customer | Supplier]:
    """Create the customer (``role="customer"``) or supplier of ``payload``, or answer the one already there.

    Raises:
        UnknownCurrencyError: the payload's currency is not an active ISO 4217 code.
        InvalidEntryError: a text the ERP cannot store (a NUL character), or a country it does not have.
        ConflictError: the reference is taken by another party, or the code by a party without it.
        SourceRejectedError: Tryton refused the party; nothing was written.
    """
    validate_party(payload)
    if violations := text_violations({"name": payload.name, "tax_id": payload.tax_id}):
        raise InvalidEntryError(f"the {role} is refused: {violations[0].message}", violations=violations)
    category = await connector.party_category(role)
    if category is None:
        raise UpstreamContractError(f"the ERP has no party category for {role}s")
    existing = await _existing(connector, role, category, payload)
    if existing is not None:
        return existing
    address: dict[str, Any] = {}
    if payload.country is not None:
        address["country"] = await _country(connector, payload.country)
    values: dict[str, Any] = {
        "name": payload.name,
        "external_ref": payload.external_ref,
        "categories": [["add", [category]]],
        "addresses": [["create", [address]]],
    }
    if payload.code is not None:
        values["code"] = payload.code
    if payload.tax_id is not None:
        values["identifiers"] = [["create", [{"code": payload.tax_id}]]]
    try:
        (party_id,) = await call_write(connector.rpc, "model.party.party.create", [values], {})
    except TrytonUserError as refused:
        # Lost the race to a request with the same reference? Then that party is the answer.
        existing = await _existing(connector, role, category, payload)
        if existing is not None:
            return existing
        if payload.code is not None and await _parties(connector, [("code", "=", payload.code)]):
            raise ConflictError(
                f"code {payload.code!r} is already used by another party", field="code"
            ) from None
        raise SourceRejectedError(
            f"the ERP refused the party: {refused.message}", source_message=str(refused)
        ) from None
    (record,) = await party_records(connector, role, await _parties(connector, [("id", "=", party_id)]))
    return Written(record, created=True)


async def _parties(connector: TrytonConnector, domain: list[Any]) -> list[rows.PartyRow]:
    return await connector.search("party.party", domain, rows.PartyRow, {"active_test": False})


async def _existing(
    connector: TrytonConnector, role: str, category: int, payload: CustomerCreate | SupplierCreate
) -> Written[Customer | Supplier] | None:
    """The party already created under ``payload.external_ref``; 409 when it is another identity."""
    found = await _parties(connector, [("external_ref", "=", payload.external_ref)])
    if not found:
        return None
    if category not in found[0].categories:
        other = "supplier" if role == "customer" else "customer"
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by a party that is not a {role}",
            existing_id=connector.record_id(other, found[0].id),
        )
    (record,) = await party_records(connector, role, found)
    if record.name != payload.name or (payload.code is not None and record.code != payload.code):
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by another {role} ({record.id}) "
            "with a different name or code",
            existing_id=record.id,
        )
    return Written(record, created=False)


async def _country(connector: TrytonConnector, code: str) -> int:
    """Id of the ERP's country ``code``; 422 when the ERP has none."""
    found: list[int] = await connector.rpc.call(
        "model.country.country.search", [("code", "=", code)], 0, 1, None, {}
    )
    if not found:
        message = f"the ERP has no country {code!r}"
        raise InvalidEntryError(
            message, violations=[Violation(reason="unknown-country", message=message, field="country")]
        )
    return found[0]
