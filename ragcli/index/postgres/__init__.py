"""The PostgreSQL store: an index in a schema of a PostgreSQL database, with pgvector.

    store       PostgresStore: what ``index.open`` returns for a postgresql:// URL
    server      connecting (psycopg imported there, when first needed), the advisory writer lock
    schema      the tables, their versions and migrations
    reader      PgReader: one REPEATABLE READ snapshot
    writer      PgWriter: atomic batches, rebuilds into a staging schema

``index.open`` imports this package only for a URL: the SQLite path never loads it.
"""

from .store import PostgresStore

__all__ = ["PostgresStore"]
