"""The finance flows, one package per flow."""
