"""``/v1/planning/{source}/...``: the planning platform in canonical terms."""
