"""Connectors, one package per connector kind."""
