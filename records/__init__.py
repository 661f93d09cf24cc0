"""The records database: alert history now, CC-16000 compliance records later (SQLAlchemy 2, Alembic).

`db` makes the engine (SQLite file by default, WAL and foreign keys on; PostgreSQL by URL) and holds the
one declarative `Base` every package's tables share; `migrate.upgrade(url)` brings a database to the
newest schema with the migrations shipped in `records/migrations` (no alembic.ini needed).
"""
