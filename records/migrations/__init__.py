"""Alembic migrations of the records database (script_location of `records.migrate`)."""
