"""The crm system API: ``/v1/crm/{source}/...``."""
