"""system_apis: one connector per source system, all behind the canonical finance model."""
