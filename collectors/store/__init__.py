"""The DuckDB store: one file, versioned schema, runs with provenance, a quarantine.

The store knows no collector: collectors hand it rows; it owns the schema
(``migrations/NNN_*.sql``, applied in order, forward only) and the derived
views (``views/*.sql``, re-applied on every migrate so each has one definition).
"""

from collectors.store.db import (
    DEFAULT_DB_PATH,
    IngestedFile,
    Run,
    RunState,
    SchemaError,
    Store,
    available_migrations,
    file_fingerprint,
    open_store,
    transaction,
)

__all__ = [
    "DEFAULT_DB_PATH",
    "IngestedFile",
    "Run",
    "RunState",
    "SchemaError",
    "Store",
    "available_migrations",
    "file_fingerprint",
    "open_store",
    "transaction",
]
