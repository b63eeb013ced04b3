"""Anaplan planning models, reached over Anaplan's Integration API v2; ``sandbox/`` is a local stand-in for tests."""
