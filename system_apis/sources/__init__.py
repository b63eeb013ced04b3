"""The sources declared in configuration, with their live health."""
