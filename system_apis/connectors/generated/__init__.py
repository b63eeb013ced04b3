"""A generated ledger: an ERP-shaped source whose actuals are computed from cardinalities (``kind = "generated"``)."""
