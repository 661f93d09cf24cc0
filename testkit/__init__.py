"""Launchers of the real services and the example site, shared by tests/ and bench/ (not shipped)."""
