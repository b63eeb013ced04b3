"""Which ERP company sells to, and bills, each seeded customer: one rule for the CRM and billing sandboxes' seeds.

The ERP seed's customers ``C-001`` … ``C-012`` are parties of both companies, so
the ERP alone does not say who sells to whom. The sandboxes must agree, or a deal
won in the CRM would be billed in another currency than its customer's: the first
half of the customers buy from ``FS-US`` in USD, the second half from ``FS-EU``
in EUR.
"""

from __future__ import annotations

from system_apis.connectors.tryton.seed import COMPANIES, CUSTOMERS, CompanySeed

__all__ = ("home_company",)


def home_company(code: str) -> CompanySeed:
    """The company that sells to and bills the seeded customer ``code`` (``C-001``)."""
    number = int(code.removeprefix("C-"))
    if not 1 <= number <= CUSTOMERS:
        raise ValueError(f"{code!r} is not a seeded customer")
    return COMPANIES[0] if number <= CUSTOMERS // 2 else COMPANIES[1]
