"""The Tryton ERP connector: JSON-RPC client, mapping to the canonical model, and the ERP runtime."""
