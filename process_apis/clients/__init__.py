"""Clients for the layer below (system_apis), written against its committed OpenAPI spec."""
