"""The DuckDB store: one file, versioned schema, runs with provenance, a quarantine.

The store knows no collector: collectors hand it rows; it owns the schema
(``migrations/NNN_*.sql``, applied in order, forward only) and the derived
views (``views/*.sql``, re-applied on every migrate so each has one definition).
``DEFAULT_DB_PATH`` is where the database lives unless ``--db`` or ``$MTASTS_DB`` says
otherwise. The crawl's vocabularies (:mod:`collectors.store.vocabulary`): the ``Literal``
types ``FetchOutcome``, ``FetchPhase``, ``ProbeOutcome``, ``TlsSubclass`` of the raw tables,
``DomainReason`` and ``InputReason`` of a list's quarantined entries, and
``POSTURE_VALUES``, the posture export's values per column.
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
    utcnow,
)
from collectors.store.month import is_month
from collectors.store.vocabulary import (
    POSTURE_VALUES, DomainReason, FetchOutcome, FetchPhase, InputReason, ProbeOutcome, TlsSubclass,
)

__all__ = [
    "available_migrations",
    "DEFAULT_DB_PATH",
    "DomainReason",
    "FetchOutcome",
    "FetchPhase",
    "file_fingerprint",
    "IngestedFile",
    "InputReason",
    "is_month",
    "open_store",
    "POSTURE_VALUES",
    "ProbeOutcome",
    "Run",
    "RunState",
    "SchemaError",
    "Store",
    "TlsSubclass",
    "transaction",
    "utcnow",
]
