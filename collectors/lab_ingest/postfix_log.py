"""Reconstruct receiving sessions, queued messages and delivery attempts from a Postfix log.

A streaming state machine over log lines (:mod:`postfix_envelope` gives each line's
envelope, :mod:`postfix_messages` its meaning). It keeps only what is still open:
smtpd sessions by (host, program, pid) until ``disconnect``, queue files by (host,
instance, queue id) until ``removed``, the last TLS handshake of each smtp process;
each map is capped, so memory does not grow with the size of the log.

It yields rows (NamedTuples, for speed) of these kinds:

* :class:`SessionRow`: one receiving smtpd session: client, TLS trust level,
  protocol and cipher (``smtpd_tls_loglevel >= 1``), queue ids, rejects, end.
* :class:`MessageRow`: one queue file: origin, client and the TLS of the session that
  brought it, Message-ID, envelope sender, size, recipients, whether it expired.
* :class:`DeliveryRow`: one delivery attempt line of any delivery agent, with the TLS of
  the smtp connection it went over (``smtp_tls_loglevel >= 1``) and any certificate
  problem logged for that peer just before.
* :class:`NoticeRow`: bounce(8) sending a delay / non-delivery notice for a queue file.
* :class:`ResolverRow`: a postfix-mta-sts-resolver log line (policy lookups).
* :class:`OtherRow`: a valid log line we do not reconstruct: diagnostics, rejects, remote
  problems are kept raw; the lines of daemons without a parser (postscreen, dnsblog, tlsproxy,
  anvil, ...) and of other programs (amavis, dovecot, ...) only with ``keep_other_lines``.
* :class:`OtherCountRow`: else those lines counted per host, program, daemon, kind and hour.
* :class:`~collectors.lab_ingest.records.Quarantined`: a line that is not a log line.

Unique keys (64-bit BLAKE2b of the fields that identify a row) make re-ingesting idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import OrderedDict
from typing import Any, Iterable, Iterator, NamedTuple

from collectors.lab_ingest import postfix_messages as pm
from collectors.lab_ingest.postfix_envelope import EnvelopeParser, LogLine, split_program
from collectors.lab_ingest.records import Quarantined

# Caps on open state (entries). Beyond them the oldest entry is written as incomplete.
MAX_OPEN_SESSIONS = 50_000
MAX_OPEN_MESSAGES = 200_000
MAX_SMTP_PROCESSES = 50_000
# bounce(8) notices whose own queue file has not shown up yet (it normally follows at once).
MAX_NOTICE_PARENTS = 50_000
# A grown log resumes at the first line of the oldest state still open, but never more
# than this many bytes before where the previous run stopped.
MAX_RESUME_REWIND = 32 << 20
# OtherRow kinds that carry no evidence the study uses (other daemons' and programs' lines):
# counted (OtherCountRow) unless the reader keeps other lines raw.
COUNTED_KINDS = frozenset({"uninterpreted", "not postfix"})
# Open count groups; beyond it (and whenever the hour changes) every group is written.
MAX_OPEN_COUNTS = 1024


def row_key(*parts: object) -> int:
    """A signed 64-bit key of the identifying fields (BLAKE2b; collisions ~1e-6 at 1e7 rows).

    Each part counts as ``str(part)`` ('' for None); the text of a time stamp is memoised,
    because formatting a datetime costs more than hashing the line."""
    text = "\x1f".join([p if p.__class__ is str else _part_text(p) for p in parts])
    return _int_from_bytes(_blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(),
                           "big", signed=True)


_blake2b = hashlib.blake2b
_int_from_bytes = int.from_bytes
_TIME_TEXT: dict[dt.datetime, str] = {}
_UTC = dt.timezone.utc


def _part_text(part: object) -> str:
    if part is None:
        return ""
    if part.__class__ is dt.datetime and part.tzinfo is _UTC:   # equal UTC times print alike
        text = _TIME_TEXT.get(part)  # type: ignore[call-overload]
        if text is None:
            if len(_TIME_TEXT) > 4096:
                _TIME_TEXT.clear()
            text = _TIME_TEXT[part] = str(part)  # type: ignore[index]
        return text
    return str(part)


class SessionRow(NamedTuple):
    session_key: int
    host: str | None
    instance: str
    program: str
    pid: int | None
    connect_at: dt.datetime | None
    disconnect_at: dt.datetime | None
    first_seen_at: dt.datetime
    client_name: str | None
    client_addr: str | None
    client_port: int | None
    tls_trust: str | None
    tls_protocol: str | None
    tls_cipher: str | None
    tls_cipher_bits: str | None
    tls_key_exchange: str | None
    tls_server_signature: str | None
    tls_problem: str | None
    queue_ids: list[str]
    rejects: list[str]
    end_problem: str | None
    commands: str | None
    complete: bool
    session_seq: int         # 0, or n for the n-th more session of this process at the same time
    source_line: int


class MessageRow(NamedTuple):
    message_key: int
    host: str | None
    instance: str
    queue_id: str
    first_seen_at: dt.datetime
    queued_at: dt.datetime | None
    removed_at: dt.datetime | None
    origin: str | None               # smtpd | pickup | bounce | unknown
    session_key: int | None
    client_name: str | None
    client_addr: str | None
    tls_trust: str | None
    tls_protocol: str | None
    tls_cipher: str | None
    message_id: str | None
    sender: str | None
    size: int | None
    nrcpt: int | None
    notice_for_queue_id: str | None  # this message is bounce(8)'s notice about that queue file
    expired: bool
    complete: bool
    source_line: int


class DeliveryRow(NamedTuple):
    delivery_key: int
    logged_at: dt.datetime
    host: str | None
    instance: str
    program: str
    daemon: str
    pid: int | None
    queue_id: str
    message_key: int | None
    sender: str | None
    message_id: str | None
    recipient: str
    orig_recipient: str | None
    relay: str
    relay_host: str | None
    relay_addr: str | None
    relay_port: int | None
    conn_use: int | None
    delay: float | None
    delay_before_qmgr: float | None
    delay_in_qmgr: float | None
    delay_conn_setup: float | None
    delay_transmission: float | None
    tls_feature: str | None
    dsn: str
    status: str
    reason: str
    reason_truncated: bool
    tls_trust: str | None
    tls_protocol: str | None
    tls_cipher: str | None
    tls_cipher_bits: str | None
    tls_problem: str | None
    source_line: int


class NoticeRow(NamedTuple):
    notice_key: int
    logged_at: dt.datetime
    host: str | None
    instance: str
    queue_id: str
    message_key: int | None
    notice_recipient: str
    notice_kind: str
    notice_queue_id: str
    source_line: int


class ResolverRow(NamedTuple):
    event_key: int
    logged_at: dt.datetime
    host: str | None
    program: str
    pid: int | None
    level: str | None
    logger: str | None
    event: str          # fetch | cached | fetch_failed | resolve_request | policy_parsed | other
    domain: str | None
    detail: str
    source_line: int


class OtherRow(NamedTuple):
    line_key: int
    logged_at: dt.datetime
    host: str | None
    program: str
    pid: int | None
    daemon: str | None
    queue_id: str | None
    kind: str           # uninterpreted | not postfix | warning | error | ... | remote problem | reject
    message: str
    source_line: int


class OtherCountRow(NamedTuple):
    """How many lines of one group (host, program, daemon, kind) one hour of the log had, from
    its first line on (``source_line``): a reader writes the group when the hour changes, at
    MAX_OPEN_COUNTS groups, and at the end of the input (``complete`` False: the file may grow).
    The key is the first line's own key: a re-read of the same lines gives the same row."""
    count_key: int
    hour: dt.datetime
    host: str | None
    program: str
    daemon: str | None
    kind: str
    first_logged_at: dt.datetime
    last_logged_at: dt.datetime
    lines: int
    complete: bool
    source_line: int


Row = SessionRow | MessageRow | DeliveryRow | NoticeRow | ResolverRow | OtherRow | OtherCountRow | Quarantined


class _Session:
    __slots__ = ("host", "instance", "program", "pid", "connect_at", "first_seen_at", "client_name",
                 "client_addr", "client_port", "tls", "tls_problem", "queue_ids", "rejects",
                 "end_problem", "key", "offset", "line", "seq")

    def __init__(self, line: LogLine, instance: str, offset: int, lineno: int, seq: int = 0) -> None:
        self.host, self.instance, self.program, self.pid = line.host, instance, line.program, line.pid
        self.connect_at: dt.datetime | None = None
        self.first_seen_at = line.timestamp
        self.client_name = self.client_addr = None
        self.client_port: int | None = None
        self.tls: pm.TlsEstablished | None = None
        self.tls_problem: str | None = None
        self.queue_ids: list[str] = []
        self.rejects: list[str] = []
        self.end_problem: str | None = None
        self.key: int | None = None
        self.offset, self.line = offset, lineno
        self.seq = seq

    def session_key(self) -> int:
        if self.key is None:
            # A process serving a second client within the same time stamp gets a second key
            # (seq 1, ...); the first keeps the key it always had.
            parts = ("smtpd", self.host, self.program, self.pid, self.connect_at or self.first_seen_at,
                     self.connect_at is None)
            self.key = row_key(*parts, self.seq) if self.seq else row_key(*parts)
        return self.key


class _Message:
    __slots__ = ("host", "instance", "queue_id", "first_seen_at", "queued_at", "origin", "session_key",
                 "client_name", "client_addr", "tls", "message_id", "sender", "size", "nrcpt",
                 "notice_for", "expired", "key", "offset", "line")

    def __init__(self, host: str | None, instance: str, qid: str, at: dt.datetime, offset: int,
                 lineno: int) -> None:
        self.host, self.instance, self.queue_id, self.first_seen_at = host, instance, qid, at
        self.queued_at: dt.datetime | None = None
        self.origin: str | None = None
        self.session_key: int | None = None
        self.client_name = self.client_addr = None
        self.tls: pm.TlsEstablished | None = None
        self.message_id = self.sender = None
        self.size = self.nrcpt = None
        self.notice_for: str | None = None
        self.expired = False
        self.key = row_key("msg", host, instance, qid, at)
        self.offset, self.line = offset, lineno


class _SmtpProcess:
    __slots__ = ("tls", "problem", "queue_id")

    def __init__(self) -> None:
        self.tls: pm.TlsEstablished | None = None
        self.problem: pm.TlsProblem | None = None
        self.queue_id: str | None = None


_RESOLVER = re.compile(
    r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)? )?(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(\w+): (.*)", re.S)
_RESOLVER_EVENTS = (
    (re.compile(r"Lookup PERFORMED: domain = (\S+)"), "fetch"),
    (re.compile(r"Lookup skipped: domain = (\S+)"), "cached"),
    (re.compile(r"STS policy fetch for domain '?([^' ]+)'? failed"), "fetch_failed"),
    (re.compile(r"Got STS resolve request: sts_txt_domain=_mta-sts\.([^,\s]+)"), "resolve_request"),
    (re.compile(r"Parsed policy for domain (\S+):"), "policy_parsed"),
    (re.compile(r"Domain (\S+) does not have a valid policy"), "no_valid_policy"),
)
_RESOLVER_PROGRAMS = ("mta-sts-daemon", "postfix-mta-sts-resolver", "mta-sts-resolver")


def parse_resolver_message(message: str) -> tuple[str | None, str | None, str, str | None, str]:
    """A postfix-mta-sts-resolver log message as (level, logger, event, domain, text)."""
    m = _RESOLVER.match(message)
    level = logger = None
    text = message
    if m is not None:
        level, logger, text = m.groups()
    for pattern, event in _RESOLVER_EVENTS:
        e = pattern.search(text)
        if e is not None:
            return level, logger, event, e.group(1).rstrip(".").lower(), text
    return level, logger, "other", None, text


class PostfixLogReader:
    """Feeds lines in order; yields rows. One instance per file (it holds the year)."""

    def __init__(self, first_year: int, source_name: str = "", keep_other_lines: bool = False,
                 count_from: int = 0) -> None:
        self.envelopes = EnvelopeParser(first_year)
        self.source_name = source_name
        # Lines of other daemons and programs: kept raw, or counted from byte count_from on (a
        # resumed log's lines before it were counted by the run that read them first).
        self.keep_other_lines = keep_other_lines
        self.count_from = count_from
        self._counts: dict[tuple, list] = {}
        self._count_hour: int | None = None
        # (host, program, pid) -> (time, is_connect, sessions begun at that time): the sequence
        # that tells apart two sessions of one process within one time stamp
        self._session_seq: OrderedDict[tuple, tuple[dt.datetime, bool, int]] = OrderedDict()
        # Insertion-ordered maps whose oldest entry goes first at a cap: OrderedDict pops it in
        # O(1), where a dict's first entry lies past every slot deleted before it.
        self._sessions: OrderedDict[tuple, _Session] = OrderedDict()
        self._messages: OrderedDict[tuple, _Message] = OrderedDict()
        self._smtp: OrderedDict[tuple, _SmtpProcess] = OrderedDict()
        self._notice_parents: OrderedDict[tuple, str] = OrderedDict()
        self._pending_evicted: list[_Message] = []
        # program name -> (instance, daemon, parser), or None for another program's lines
        self._programs: dict[str, tuple[str, str, Any] | None] = {}
        self.lines = 0
        self.blank = 0
        self.interpreted = 0

    # -- the feed ------------------------------------------------------------
    def feed(self, lines: Iterable[tuple[int, int, str]]) -> Iterator[Row]:
        """``lines`` are (byte offset, line number, text without newline)."""
        interpret = self.interpret
        apply = self._apply
        n = blank = interpreted = 0
        try:
            for offset, lineno, text in lines:
                n += 1
                got = interpret(text, offset, lineno)
                if got is None:
                    blank += 1
                    continue
                if got.__class__ is not tuple:       # quarantined, or a finished row
                    if got.__class__ is OtherRow and got.kind in COUNTED_KINDS and not self.keep_other_lines:
                        yield from self._count(got, offset)
                    else:
                        yield got
                    continue
                env, instance, daemon, event = got
                interpreted += 1
                out = apply(env, instance, daemon, event, offset, lineno)
                if out is not None:
                    for row in (out if out.__class__ is list else (out,)):
                        if row.__class__ is OtherRow and row.kind in COUNTED_KINDS and not self.keep_other_lines:
                            yield from self._count(row, offset)
                        else:
                            yield row
                if self._pending_evicted:
                    for m in self._pending_evicted:
                        yield self._message_row(m, None)
                    self._pending_evicted.clear()
        finally:
            self.lines += n
            self.blank += blank
            self.interpreted += interpreted

    def interpret(self, text: str, offset: int, lineno: int) -> Any:
        """What one line says, before it meets the open state: None (blank), a Quarantined
        (not a log line), a finished row (another program's line, or a Postfix line no parser
        interprets), or ``(LogLine, instance, daemon, event)`` to apply. The compiled reader
        (``postfix_fast``) sends the lines it does not parse itself here."""
        if not text or text.isspace():
            return None
        env = self.envelopes.parse(text)
        if env is None:
            return Quarantined(f"line {lineno} (byte {offset})", text.encode("utf-8", "replace"),
                               "not a syslog / Postfix log line")
        names = self._programs.get(env.program, False)
        if names is False:
            if len(self._programs) > 4096:
                self._programs.clear()
            split = split_program(env.program)
            names = self._programs[env.program] = split and (*split, pm.PARSERS.get(split[1], pm.parse_other))
        if names is None:
            return self._non_postfix(env, lineno)
        instance, daemon, parse = names
        event = parse(env.message)
        if event is None:
            q = pm._QID_PREFIX.match(env.message)
            return OtherRow(row_key("line", env.timestamp, env.host, env.program, env.pid, env.message),
                            env.timestamp, env.host, env.program, env.pid, daemon,
                            q.group(1) if q else None, "uninterpreted", env.message, lineno)
        return (env, instance, daemon, event)

    def finish(self) -> Iterator[Row]:
        """End of input: write every state still open as an incomplete row."""
        for s in list(self._sessions.values()):
            yield self._session_row(s, None, None, False)
        self._sessions.clear()
        for m in list(self._messages.values()):
            yield self._message_row(m, None)
        self._messages.clear()
        self._smtp.clear()
        yield from self._flush_counts(False)

    # -- other lines, counted --------------------------------------------------
    def _count(self, row: OtherRow, offset: int) -> list[OtherCountRow]:
        """Count one line of another daemon or program; the groups it closes (an hour ended)."""
        if offset < self.count_from:
            return []
        at = row.logged_at
        hour = _hour_of(at)
        out: list[OtherCountRow] = []
        if self._count_hour is not None and hour != self._count_hour:
            out = self._flush_counts(True)
        self._count_hour = hour
        key = (row.host, row.program, row.daemon, row.kind)
        group = self._counts.get(key)
        if group is None:
            if len(self._counts) >= MAX_OPEN_COUNTS:
                out += self._flush_counts(True)
            self._counts[key] = [row.line_key, row.source_line, at, at, 1]
        else:
            group[2] = min(group[2], at)
            group[3] = max(group[3], at)
            group[4] += 1
        return out

    def _flush_counts(self, complete: bool) -> list[OtherCountRow]:
        out = [OtherCountRow(row_key("count", first_key, line), _hour_start(first), host, program, daemon, kind,
                             first, last, n, complete, line)
               for (host, program, daemon, kind), (first_key, line, first, last, n) in self._counts.items()]
        self._counts.clear()
        return out

    def resume_point(self, end_offset: int) -> tuple[int, dt.datetime | None]:
        """Where a grown file should be re-read from, and the time of that line (for the year)."""
        best, at = end_offset, None
        for state in (*self._sessions.values(), *self._messages.values()):
            if state.offset < best and end_offset - state.offset <= MAX_RESUME_REWIND:
                best = state.offset
                at = state.first_seen_at
        return best, at

    # -- one event -----------------------------------------------------------
    def _apply(self, env: LogLine, instance: str, daemon: str, ev: pm.Event, offset: int,
               lineno: int) -> Row | list[Row] | None:
        """Update the open state with one event; the row(s) it completes (a list when two)."""
        t = type(ev)
        if t is pm.Delivery:
            return self._delivery(env, instance, daemon, ev, offset, lineno)
        if daemon == "smtpd":
            return self._smtpd(env, instance, ev, offset, lineno)
        if t is pm.QueueActive:
            m = self._message(env, instance, ev.queue_id, offset, lineno)
            m.sender, m.size, m.nrcpt = ev.sender, ev.size, ev.nrcpt
            if m.queued_at is None:
                m.queued_at = env.timestamp
            return None
        if t is pm.MessageIdSeen:
            self._message(env, instance, ev.queue_id, offset, lineno).message_id = ev.message_id
            return None
        if t is pm.Removed:
            m = self._messages.pop((env.host, instance, ev.queue_id), None)
            if m is not None:
                return self._message_row(m, env.timestamp)
            return self._other(env, daemon, ev.queue_id, "removed (queue file not seen)", lineno)
        if t is pm.TlsEstablished or t is pm.TlsProblem:
            proc = self._smtp_process(env)
            if t is pm.TlsEstablished:
                proc.tls, proc.problem, proc.queue_id = ev, None, None
            else:
                proc.problem = ev
            return None
        if t is pm.Notice:
            m = self._messages.get((env.host, instance, ev.queue_id))
            self._remember_notice(env.host, instance, ev.notice_queue_id, ev.queue_id)
            return NoticeRow(row_key("notice", env.timestamp, env.host, instance, ev.queue_id,
                                     ev.notice_queue_id),
                             env.timestamp, env.host, instance, ev.queue_id,
                             m.key if m is not None else None, ev.recipient, ev.kind,
                             ev.notice_queue_id, lineno)
        if t is pm.Pickup:
            m = self._message(env, instance, ev.queue_id, offset, lineno)
            m.origin = m.origin or "pickup"
            m.sender = m.sender or ev.sender
            return None
        if t is pm.Expired:
            m = self._message(env, instance, ev.queue_id, offset, lineno)
            m.expired = True
            m.sender = m.sender or ev.sender
            return None
        if t is pm.Diagnostic:
            return self._other(env, daemon, ev.queue_id, ev.level or "note", lineno)
        if t is pm.RemoteProblem:
            return self._other(env, daemon, ev.queue_id, "remote problem", lineno)
        if t is pm.Rejected:
            return self._other(env, daemon, ev.queue_id, ev.action, lineno)
        return self._other(env, daemon, None, "uninterpreted", lineno)

    def _smtpd(self, env: LogLine, instance: str, ev: pm.Event, offset: int,
               lineno: int) -> Row | list[Row] | None:
        key = (env.host, env.program, env.pid)
        t = type(ev)
        if t is pm.Connect:
            out: list[Row] = []
            old = self._sessions.pop(key, None)
            if old is not None:
                out.append(self._session_row(old, None, None, False))
            s = _Session(env, instance, offset, lineno, self._next_seq(key, env.timestamp, True))
            s.connect_at = env.timestamp
            s.client_name, s.client_addr, s.client_port = ev.client_name, ev.client_addr, ev.client_port
            self._sessions[key] = s
            if len(self._sessions) > MAX_OPEN_SESSIONS:
                out.append(self._session_row(self._sessions.popitem(last=False)[1], None, None, False))
            return out or None
        s = self._sessions.get(key)
        if s is None:
            if t is pm.Diagnostic and ev.queue_id is None and ev.peer_addr is None:
                return self._other(env, "smtpd", None, ev.level or "note", lineno)
            s = self._sessions[key] = _Session(env, instance, offset, lineno,
                                               self._next_seq(key, env.timestamp, False))
        if t is pm.Disconnect:
            del self._sessions[key]
            if s.client_addr is None:
                s.client_name, s.client_addr = ev.client_name, ev.client_addr
            return self._session_row(s, env.timestamp, ev.commands, True)
        if t is pm.TlsEstablished:
            s.tls = ev
            if s.client_addr is None:
                s.client_name, s.client_addr = ev.peer_name, ev.peer_addr
        elif t is pm.ClientQueued:
            s.queue_ids.append(ev.queue_id)
            if s.client_addr is None:
                s.client_name, s.client_addr = ev.client_name, ev.client_addr
            m = self._message(env, instance, ev.queue_id, offset, lineno)
            m.origin = "smtpd"
            m.session_key = s.session_key()
            m.client_name, m.client_addr, m.tls = ev.client_name, ev.client_addr, s.tls
        elif t is pm.Rejected:
            s.rejects.append(" ".join(p for p in (ev.action, ev.stage, ev.status_code, ev.enhanced_code,
                                                   ev.status_message) if p))
            return self._other(env, "smtpd", None if ev.queue_id == "NOQUEUE" else ev.queue_id,
                               ev.action, lineno)
        elif t is pm.SessionProblem:
            desc = ev.problem + (f" after {ev.stage}" if ev.stage else "")
            if ev.problem == "SSL_accept error":
                s.tls_problem = f"SSL_accept error: {ev.detail}" if ev.detail else "SSL_accept error"
            else:
                s.end_problem = desc
        elif t is pm.Diagnostic:
            return self._other(env, "smtpd", ev.queue_id, ev.level or "note", lineno)
        else:
            return self._other(env, "smtpd", None, "uninterpreted", lineno)
        return None

    def _next_seq(self, key: tuple, at: dt.datetime, connect: bool) -> int:
        """The number of sessions this process began before at the same time (and kind)."""
        last = self._session_seq.pop(key, None)
        seq = last[2] if last is not None and last[0] == at and last[1] == connect else 0
        self._session_seq[key] = (at, connect, seq + 1)
        if len(self._session_seq) > MAX_SMTP_PROCESSES:
            self._session_seq.popitem(last=False)
        return seq

    def _delivery(self, env: LogLine, instance: str, daemon: str, ev: pm.Delivery, offset: int,
                  lineno: int) -> DeliveryRow:
        m = self._messages.get((env.host, instance, ev.queue_id))
        tls = problem = None
        if daemon in ("smtp", "lmtp", "relay") or env.program.endswith("/smtp"):
            proc = self._smtp.get((env.host, env.program, env.pid))
            if proc is not None:
                if proc.queue_id is not None and proc.queue_id != ev.queue_id and not ev.conn_use:
                    proc.tls = proc.problem = None   # a new connection that logged no handshake
                if proc.tls is not None and proc.tls.peer_addr == ev.relay_addr:
                    tls = proc.tls
                if proc.problem is not None and proc.problem.peer_addr == ev.relay_addr:
                    problem = f"{proc.problem.problem}: {proc.problem.detail}"
                proc.queue_id = ev.queue_id
        d = ev.delays
        return DeliveryRow(
            row_key("delivery", env.timestamp, env.host, env.program, env.pid, ev.queue_id,
                    ev.recipient, ev.status, ev.reason),
            env.timestamp, env.host, instance, env.program, daemon, env.pid, ev.queue_id,
            m.key if m is not None else None, m.sender if m is not None else None,
            m.message_id if m is not None else None,
            ev.recipient, ev.orig_recipient, ev.relay, ev.relay_host, ev.relay_addr, ev.relay_port,
            ev.conn_use, ev.delay, d[0], d[1], d[2], d[3], ev.tls_feature, ev.dsn, ev.status, ev.reason,
            ev.reason_truncated, tls.trust if tls else None, tls.protocol if tls else None, tls.cipher if tls else None,
            tls.cipher_bits if tls else None, problem, lineno)

    # -- state -----------------------------------------------------------------
    def _message(self, env: LogLine, instance: str, qid: str, offset: int, lineno: int) -> _Message:
        key = (env.host, instance, qid)
        m = self._messages.get(key)
        if m is None:
            m = self._messages[key] = _Message(env.host, instance, qid, env.timestamp, offset, lineno)
            parent = self._notice_parents.pop(key, None)
            if parent is not None:
                m.notice_for, m.origin = parent, "bounce"
            if len(self._messages) > MAX_OPEN_MESSAGES:
                self._pending_evicted.append(self._messages.popitem(last=False)[1])
        return m

    def _remember_notice(self, host: str | None, instance: str, notice_qid: str, parent: str) -> None:
        key = (host, instance, notice_qid)
        m = self._messages.get(key)
        if m is not None:
            m.notice_for, m.origin = parent, "bounce"
            return
        self._notice_parents[key] = parent
        if len(self._notice_parents) > MAX_NOTICE_PARENTS:
            self._notice_parents.popitem(last=False)

    def _smtp_process(self, env: LogLine) -> _SmtpProcess:
        key = (env.host, env.program, env.pid)
        proc = self._smtp.get(key)
        if proc is None:
            proc = self._smtp[key] = _SmtpProcess()
            if len(self._smtp) > MAX_SMTP_PROCESSES:
                self._smtp.popitem(last=False)
        return proc

    # -- rows ------------------------------------------------------------------
    def _session_row(self, s: _Session, disconnect_at: dt.datetime | None, commands: str | None,
                     complete: bool) -> SessionRow:
        tls = s.tls
        return SessionRow(
            s.session_key(), s.host, s.instance, s.program, s.pid, s.connect_at, disconnect_at,
            s.first_seen_at, s.client_name, s.client_addr, s.client_port,
            tls.trust if tls else None, tls.protocol if tls else None, tls.cipher if tls else None,
            tls.cipher_bits if tls else None, tls.key_exchange if tls else None,
            tls.server_signature if tls else None, s.tls_problem, s.queue_ids, s.rejects,
            s.end_problem, commands, complete and s.connect_at is not None, s.seq, s.line)

    def _message_row(self, m: _Message, removed_at: dt.datetime | None) -> MessageRow:
        tls = m.tls
        return MessageRow(
            m.key, m.host, m.instance, m.queue_id, m.first_seen_at, m.queued_at, removed_at,
            m.origin or "unknown", m.session_key, m.client_name, m.client_addr,
            tls.trust if tls else None, tls.protocol if tls else None, tls.cipher if tls else None,
            m.message_id, m.sender, m.size, m.nrcpt, m.notice_for, m.expired, removed_at is not None,
            m.line)

    def _other(self, env: LogLine, daemon: str | None, qid: str | None, kind: str, lineno: int) -> OtherRow:
        return OtherRow(row_key("line", env.timestamp, env.host, env.program, env.pid, env.message),
                        env.timestamp, env.host, env.program, env.pid, daemon, qid, kind, env.message,
                        lineno)

    def _non_postfix(self, env: LogLine, lineno: int) -> Row:
        base = env.program.rpartition("/")[2]
        if base in _RESOLVER_PROGRAMS or env.program in _RESOLVER_PROGRAMS:
            level, logger, event, domain, text = parse_resolver_message(env.message)
            self.interpreted += 1
            return ResolverRow(row_key("resolver", env.timestamp, env.host, env.program, env.pid,
                                       env.message),
                               env.timestamp, env.host, env.program, env.pid, level, logger, event,
                               domain, text, lineno)
        return self._other(env, None, None, "not postfix", lineno)


def _hour_of(at: dt.datetime) -> int:
    """The hour of a UTC time, counted from 1970 (the compiled reader's)."""
    return (at.toordinal() - 719163) * 24 + at.hour


def _hour_start(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)
