"""Clients for the layer below (process_apis), written against its committed OpenAPI spec."""
