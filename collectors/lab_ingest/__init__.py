"""Lab ingest: the audit lab's evidence (Postfix and policy-server logs, recorder records,
published-lab exports, TLS-RPT reports, the send ledger, users' notices) into the store.

Following one input through :func:`ingest`, module by module in the order the data flows:
``driver`` (one run over many inputs) -> ``formats`` (the registry: what the input is, how it
is read, which tables it fills) -> ``linesource`` (a log's lines, gzip, skip or resume from an
earlier run) -> the parsers (``postfix_fast``/``postfix_log``, ``http_log``, the record
parsers) -> ``readers`` (parsed input to table rows, pseudonymised by ``pseudonymise``) ->
``sink`` (buffered, de-duplicated bulk inserts on a writer thread) -> the store (the run and
the ``ingested_files`` row). Only the names below are for other packages: ``FORMATS`` (the
evidence formats ``--format`` accepts), ``LAB_NGINX_LOG_FORMAT`` (the access-log format the
lab's nginx writes), ``COMPILED_READER_AVAILABLE`` (whether the compiled Postfix reader is built),
``compiled_reader_counters`` (how many lines of a log it reads itself: the benchmark's measure).
"""

from collectors.lab_ingest.driver import FileOutcome, IngestOptions, IngestSummary, ingest
from collectors.lab_ingest.formats import FORMATS
from collectors.lab_ingest.http_log import LAB_NGINX_LOG_FORMAT, HttpRequest
from collectors.lab_ingest.http_log import parse_lines as parse_access_log_lines
from collectors.lab_ingest.ledger import LedgerEntry, append_ledger_csv, ledger_entries, make_addresses
from collectors.lab_ingest.normalize import address_uuid, lab_label, normalize_address, normalize_message_id, utc_iso
from collectors.lab_ingest.postfix_fast import AVAILABLE as COMPILED_READER_AVAILABLE
from collectors.lab_ingest.postfix_fast import compiled_reader_counters
from collectors.lab_ingest.recorder import RecordedMessage
from collectors.lab_ingest.recorder import parse as parse_recorder_lines
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.tlsrpt_sources import parse_post_log

__all__ = [
    "COMPILED_READER_AVAILABLE",
    "FORMATS",
    "FileOutcome",
    "HttpRequest",
    "IngestOptions",
    "IngestSummary",
    "LAB_NGINX_LOG_FORMAT",
    "LedgerEntry",
    "Quarantined",
    "RecordedMessage",
    "address_uuid",
    "append_ledger_csv",
    "compiled_reader_counters",
    "ingest",
    "lab_label",
    "ledger_entries",
    "make_addresses",
    "normalize_address",
    "normalize_message_id",
    "parse_access_log_lines",
    "parse_post_log",
    "parse_recorder_lines",
    "utc_iso",
]
