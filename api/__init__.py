"""The web API: FastAPI app, local users, sessions and tokens, roles, audited (docs/api.md)."""
