"""The billing system API: ``/v1/billing/{source}/...``."""
