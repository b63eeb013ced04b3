"""Stripe billing, reached over Stripe's REST API (form-encoded, bearer secret key); ``sandbox/`` is a local
stand-in for tests."""
