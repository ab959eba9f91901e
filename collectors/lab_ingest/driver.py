"""The ingest driver: files in, rows out, once (``mtasts ingest``).

For each input (a file, or a folder that is one source such as a Maildir) it asks the format
registry what the input is, the line source whether an earlier run read it (skip) or its
beginning (resume), feeds it through its reader into the sink, and records what it read
(``ingested_files``, through the store). One call is one run (``runs``). Every table's
primary key is computed from the observation, so even an overlapping copy (a rotated log,
the same report in two mailboxes) adds nothing twice. Whatever cannot be parsed goes to the
quarantine table with its raw bytes and the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from collectors.lab_ingest import linesource, readers
from collectors.lab_ingest.formats import FOLDER, REGISTRY, EvidenceFormat, detect_path
from collectors.lab_ingest.pseudonymise import Pseudonymiser, pseudonymiser_for
from collectors.lab_ingest.records import Quarantined
from collectors.lab_ingest.sink import Sink
from collectors.store import IngestedFile, Store, file_fingerprint

UTC = dt.timezone.utc


# --------------------------------------------------------------------------- options and results
@dataclass(frozen=True, slots=True)
class IngestOptions:
    """What the user asked for: ``--year``, ``--format``, ``--lab-domain``, ``--pseudonymise``,
    ``--reader`` (Postfix logs: ``compiled``, ``python`` (the reference), or ``auto``: the
    compiled reader where it is built and nothing is pseudonymised), ``--keep-other-lines``
    (other daemons' and programs' lines raw, not counted)."""

    year: int | None = None
    format: str | None = None
    lab_domains: tuple[str, ...] = ()
    pseudonymise: bool = False
    reader: str = "auto"
    keep_other_lines: bool = False


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What one input gave, per table: rows the table gained (``added``), stored rows replaced
    by a different reading of the same key (``updated``: a session or queue file completed by
    a re-read), and rows not added because their key was already stored or came earlier in
    the input (``duplicates``); the quarantined count; how it was read; and the file's
    SHA-256 and size (of the bytes as stored, gzip included; for a skipped file, those stored
    when it was read)."""

    source_name: str
    format: str | None
    status: str                       # complete | resumed | skipped | truncated | empty | failed
    lines: int
    added: dict[str, int]
    quarantined: int
    note: str | None = None
    updated: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    sha256: str | None = None
    bytes: int | None = None


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What one ingest run did: its id and, per input, a :class:`FileOutcome`."""

    run_id: str
    files: tuple[FileOutcome, ...]

    def by_table(self) -> dict[str, dict[str, int]]:
        """Per table: ``added``, ``updated`` and ``duplicates`` over all files."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            for what in ("added", "updated", "duplicates"):
                for table, n in getattr(f, what).items():
                    c = out.setdefault(table, {"added": 0, "updated": 0, "duplicates": 0})
                    c[what] += n
        return dict(sorted(out.items()))

    def rows_by_table(self) -> dict[str, int]:
        """Rows each table gained (``added``), over all files."""
        return {t: c["added"] for t, c in self.by_table().items()}

    def by_format(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for f in self.files:
            c = out.setdefault(f.format or "unknown", Counter())
            c["files"] += 1
            c["lines"] += f.lines
            c["added"] += sum(f.added.values())
            c["updated"] += sum(f.updated.values())
            c["duplicates"] += sum(f.duplicates.values())
            c["quarantined"] += f.quarantined
        return {k: dict(v) for k, v in sorted(out.items())}

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "by_format": self.by_format(), "tables": self.by_table(),
                "quarantined": self.quarantined,
                "files": [dataclasses.asdict(f) for f in self.files]}


# --------------------------------------------------------------------------- the driver
class Ingester:
    """One ``mtasts ingest`` run over many inputs."""

    def __init__(self, store: Store, options: IngestOptions) -> None:
        self.store = store
        self.con = store.con.cursor()
        self.options = options

    def expand(self, paths: Sequence[Path]) -> list[tuple[Path, str | None]]:
        """Inputs as (path, format): files, and folders that are one source; plain folders walked."""
        out: list[tuple[Path, str | None]] = []
        for path in paths:
            if _special(path):  # a FIFO would block open() (and so sniffing) forever
                out.append((path, None))
                continue
            fmt = self.options.format or detect_path(path)
            known = REGISTRY.get(fmt) if fmt is not None else None
            if path.is_dir() and (fmt == FOLDER or (known is not None and known.reads_lines)):
                for child in sorted(path.iterdir()):
                    if child.name.startswith("."):
                        continue
                    out.extend(self.expand([child]))
                continue
            out.append((path, fmt))
        return out

    def run(self, paths: Sequence[Path], on_file: Callable[[FileOutcome], None] | None = None) -> IngestSummary:
        units = self.expand(paths)
        # Each file is read once, by its parse, which also hashes it: the run starts with the
        # inputs' names and sizes, and their SHA-256 is filled in as each file is read.
        inputs: list[dict[str, Any]] = [
            {"name": str(path), "sha256": None, "bytes": path.stat().st_size if path.is_file() else None}
            for path, _fmt in units]
        input_list = ", ".join(str(p) for p in paths)
        if len(input_list) > 500:
            input_list = input_list[:497] + "..."
        run = self.store.start_run("ingest", input_list, inputs, parameters={
            "year": self.options.year, "format": self.options.format,
            "lab_domains": list(self.options.lab_domains), "pseudonymise": self.options.pseudonymise,
            "keep_other_lines": self.options.keep_other_lines})
        sink = Sink(self.con, run)
        pseudo = pseudonymiser_for(self.con, self.options.pseudonymise)
        for domain in self.options.lab_domains:
            self.con.execute("INSERT OR IGNORE INTO lab_domains VALUES (?, ?, ?)",
                             [domain.lower().rstrip("."), run.run_id, dt.datetime.now(UTC)])
        outcomes = []
        status = "finished"
        try:
            for i, (path, fmt) in enumerate(units):
                outcome = self._one(sink, pseudo, path, fmt)
                outcomes.append(outcome)
                inputs[i] = _input_entry(path, outcome)
                if on_file is not None:
                    on_file(outcome)
        except BaseException:
            status = "failed"
            raise
        finally:
            sink.close()
            summary = IngestSummary(run.run_id, tuple(outcomes))
            # start_run stored the inputs before they were read: now their hashes are known.
            self.store.set_run_inputs(run.run_id, inputs)
            self.store.finish_run(run.run_id, status, summary.as_dict())
        return summary

    # -- one input ----------------------------------------------------------
    def _one(self, sink: Sink, pseudo: Pseudonymiser, path: Path, name: str | None) -> FileOutcome:
        sink.begin(str(path))
        if _special(path):
            reason = "not a regular file (a FIFO, socket or device): not read"
            sink.quarantine("unknown", Quarantined(str(path), b"", reason))
            sink.flush()
            return FileOutcome(str(path), None, "failed", 0, {}, 1, reason)
        fmt = REGISTRY.get(name) if name is not None else None
        if fmt is None and path.is_file() and path.stat().st_size == 0:
            # No bytes, no evidence of any format (a TLS-RPT receiver's output before its first
            # report): nothing to read and nothing to keep; said, not quarantined.
            sha, size = file_fingerprint(path)
            return FileOutcome(str(path), None, "empty", 0, {}, 0, "empty file: no evidence in it yet",
                               sha256=sha, bytes=size)
        if fmt is None:
            sink.quarantine("unknown", Quarantined(str(path), linesource.head_bytes(path), "format not recognised "
                                                   "(use --format to say what it is)"))
            sink.flush()
            sha, size = file_fingerprint(path) if path.is_file() else (None, None)
            return FileOutcome(str(path), None, "failed", 0, {}, 1, "format not recognised",
                               sha256=sha, bytes=size)
        opened = linesource.open_input(self.con, path, fmt.name, fmt.reads_lines)
        if isinstance(opened, linesource.AlreadyRead):
            self._record_file(sink, IngestedFile(str(path), fmt.name, _is_gzip(path), opened.sha256, opened.bytes,
                                                 "skipped", note=opened.note), records=0)
            return FileOutcome(str(path), fmt.name, "skipped", 0, {}, 0, opened.note,
                               sha256=opened.sha256, bytes=opened.bytes)
        if opened is None:
            return self._records(sink, pseudo, path, fmt)
        return self._log(sink, path, fmt.name, opened, pseudo)

    def _log(self, sink: Sink, path: Path, fmt: str, opened: linesource.LogOpening,
             pseudo: Pseudonymiser) -> FileOutcome:
        """A log read line by line: whole, or resumed where an earlier run stopped."""
        read = readers.read_log(sink, pseudo, opened, fmt, self.options.year, self.options.reader,
                                self.options.keep_other_lines)
        sink.flush()
        end = read.source
        status = "truncated" if end.problem else ("resumed" if end.start else "complete")
        note = "; ".join(n for n in (opened.note, end.problem) if n) or None
        self._record_file(sink, IngestedFile(
            str(path), fmt, end.compressed, end.sha256, end.bytes, status, head_sha256=end.head_sha256,
            prefix_sha256=end.prefix_sha256, start_offset=end.start, end_offset=end.end,
            resume_offset=read.resume.offset, resume_year=read.resume.year, lines=read.resume.lines, note=note))
        return self._outcome(sink, path, fmt, status, read.resume.lines, note, (end.sha256, end.bytes))

    def _records(self, sink: Sink, pseudo: Pseudonymiser, path: Path, fmt: EvidenceFormat) -> FileOutcome:
        """A record format (reports, mailboxes, JSON lines, the ledger) through its parser."""
        n = readers.read_records(sink, pseudo, path, fmt)
        sink.flush()
        # The record parsers open the file themselves: it is hashed after them (small files,
        # still in the page cache). A folder (Maildir, POST spool) has no single hash.
        sha, size = file_fingerprint(path) if path.is_file() else (None, None)
        self._record_file(sink, IngestedFile(str(path), fmt.name, _is_gzip(path), sha or "", size or 0, "complete"))
        return self._outcome(sink, path, fmt.name, "complete", n, None, (sha, size))

    def _record_file(self, sink: Sink, file: IngestedFile, records: int | None = None) -> None:
        """The file's ``ingested_files`` row, with the rows the tables gained from it (unless
        given) and what it quarantined."""
        self.store.record_ingested_file(sink.run, dataclasses.replace(
            file, records=sum(sink.added.values()) if records is None else records,
            quarantined=sink.quarantined))

    @staticmethod
    def _outcome(sink: Sink, path: Path, fmt: str, status: str, lines: int, note: str | None,
                 fingerprint: tuple[str, int] | tuple[None, None]) -> FileOutcome:
        return FileOutcome(str(path), fmt, status, lines, dict(sorted(sink.added.items())), sink.quarantined,
                           note, updated=dict(sorted(sink.updated.items())),
                           duplicates=dict(sorted(sink.duplicates.items())),
                           sha256=fingerprint[0], bytes=fingerprint[1])


def _special(path: Path) -> bool:
    """A path that exists but is neither a folder nor a regular file (``stat`` never blocks)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISDIR(mode) or stat.S_ISREG(mode))


def _is_gzip(path: Path) -> bool:
    return path.is_file() and linesource.head_bytes(path, 2) == b"\x1f\x8b"


def _input_entry(path: Path, outcome: FileOutcome) -> dict[str, Any]:
    """The run's record of one input: name, SHA-256 and size as read (a skipped file: as
    stored by the run that read it, named)."""
    entry: dict[str, Any] = {"name": str(path), "sha256": outcome.sha256, "bytes": outcome.bytes}
    if outcome.status == "skipped" and outcome.note:
        entry["skipped"] = outcome.note
    return entry


def ingest(store: Store, paths: Sequence[Path | str], options: IngestOptions | None = None,
           on_file: Callable[[FileOutcome], None] | None = None) -> IngestSummary:
    """Ingest files and folders into ``store`` as one run; see the module docstring."""
    return Ingester(store, options or IngestOptions()).run([Path(p) for p in paths], on_file)
