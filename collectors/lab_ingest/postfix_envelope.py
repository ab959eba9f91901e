"""The envelope of one mail-log line: when, which host, which program and pid, and the text.

A lab's Postfix writes its log in several envelopes; this module reads each and
hands on ``(timestamp, host, program, pid, message)``:

* classic BSD syslog (RFC 3164 section 4.1.2): ``Mmm dd hh:mm:ss host prog[pid]: text``,
  optionally with a ``<PRI>`` prefix or a fraction of a second (``journalctl -o
  short-precise``, Postfix's own ``maillog_file``). It has no year and no zone:
  the year comes from the caller (:class:`YearTracker`), the zone is taken as UTC.
* ISO 8601 syslog (rsyslog's ``RSYSLOG_FileFormat``, ``journalctl -o short-iso``):
  ``2024-03-01T10:00:00.123456+00:00 host prog[pid]: text``.
* RFC 5424 (section 6): ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``.
* container stdout: any of the above behind a ``docker logs --timestamps`` prefix,
  a ``docker compose logs`` ``service  | `` prefix, or a docker json-file line
  ``{"log": "...", "time": "..."}``.
* the postfix-mta-sts-resolver's own log file: ``2024-03-01 10:00:00 DEBUG    STS: text``.

Parsing never raises: a line that is not a log line gives ``None``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Callable, NamedTuple

UTC = dt.timezone.utc
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

# Program names: "postfix/smtpd", "postfix-a/smtpd", "postfix/submission/smtpd", "mta-sts-daemon".
_PROG = r"([^\s\[\]:]+)(?:\[(\d+)\])?"

_CLASSIC = re.compile(
    r"(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))? (\S+) "
    + _PROG + r": ?(.*)", re.S)
# The fast path for classic lines: the fixed 15-character time stamp is looked up in a cache,
# then only host, program and pid are matched (the message is sliced off, not captured).
_CLASSIC_TAIL = re.compile(r"(?:\.(\d{1,9}))? (\S+) " + _PROG + r": ?")
_PROG_NAME = re.compile(r"[^\s\[\]:]+")
_NOT_SPACE = re.compile(r"\S+")
_CLASSIC_STAMP = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d)$")
_ISO = re.compile(
    r"(?:<\d{1,3}>)?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(Z|[+-]\d\d:?\d\d)? (\S+) " + _PROG + r": ?(.*)", re.S)
_RFC5424 = re.compile(
    r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) "
    r"(-|(?:\[(?:[^\]\"\\]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (?:\ufeff)?(.*))?", re.S)
_RESOLVER_OWN = re.compile(
    r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:,(\d{3}))? (DEBUG|INFO|WARNING|ERROR|CRITICAL) +"
    r"(\w+): (.*)", re.S)
_DOCKER_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ")
_COMPOSE = re.compile(r"[\w.-]+\s*\| ")
_ISO_TS = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)?$")


class LogLine(NamedTuple):
    """One log line's envelope. ``timestamp`` is aware (UTC when the line had no zone)."""

    timestamp: dt.datetime
    host: str | None
    program: str
    pid: int | None
    message: str


def _pid(text: str | None) -> int | None:
    """A process id: decimal digits that fit a 64-bit column (18 at most), else None (the
    raw line keeps the text)."""
    return int(text) if text and len(text) <= 18 and text.isdecimal() else None


def _fraction(frac: str | None) -> int:
    return int((frac + "000000")[:6]) if frac else 0


def _zone(text: str | None) -> dt.tzinfo:
    if not text or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def parse_iso_timestamp(text: str) -> dt.datetime | None:
    """An RFC 3339 / ISO 8601 time (zone optional, read as UTC); None if it is not one."""
    m = _ISO_TS.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _fraction(frac),
                           tzinfo=_zone(zone)).astimezone(UTC)
    except (ValueError, OverflowError):    # an offset past year 1 or 9999
        return None


class YearTracker:
    """Gives classic-syslog lines (no year) a year: the first line's year, then forward.

    The year advances when the month goes back by six or more (December to January);
    a single out-of-order line that jumps six or more months forward just after such a
    rollover belongs to the previous year. Syslog has no year at all (RFC 3164 4.1.2).
    """

    __slots__ = ("year", "_last_month")

    def __init__(self, first_year: int) -> None:
        self.year = first_year
        self._last_month: int | None = None

    def year_for(self, month: int) -> int:
        last = self._last_month
        if last is None:
            self._last_month = month
            return self.year
        if month == last:
            return self.year
        if last - month >= 6:          # Dec -> Jan: a new year
            self.year += 1
            self._last_month = month
            return self.year
        if month - last >= 6:          # Jan -> Dec: a late line from the old year
            return self.year - 1
        self._last_month = month
        return self.year


class EnvelopeParser:
    """Parses envelopes of one file; remembers the year and caches timestamps (speed)."""

    def __init__(self, first_year: int) -> None:
        self.years = YearTracker(first_year)
        self._ts_cache: dict[tuple[str, str, str, str, str, str | None], dt.datetime] = {}
        self._stamp_cache: dict[str, dt.datetime | None] = {}
        self._hosts: set[str] = set()        # host names known to match (\S+)
        self._progs: set[str] = set()        # program names known to match _PROG_NAME
        self._order: tuple[Callable[[str], LogLine | None], ...] = (
            self._classic, self._iso, self._rfc5424, self._resolver_own, self._container)

    def parse(self, line: str) -> LogLine | None:
        """The envelope of ``line`` (without its newline), or None for a non-log line.

        The envelopes are tried in one fixed order: a line that two of them can read (a docker
        ``--timestamps`` line whose inner line begins like an ISO line) is read the same
        whatever came before it (it used to be read by the envelope that worked last, so a
        re-read from a resume point could differ from the first reading)."""
        for attempt in self._order:
            got = attempt(line)
            if got is not None:
                return got
        return None

    # -- the envelopes -----------------------------------------------------
    def _classic(self, line: str) -> LogLine | None:
        stamp = line[:15]
        ts = self._stamp_cache.get(stamp, False)
        if ts is False:
            ts = self._stamp(stamp)
        if ts is not None:
            if line[15:16] == " ":
                # The common shape without a regex: `` host prog[pid]: ``. Accepted only when
                # each piece is what _CLASSIC_TAIL would match (else the regex decides).
                sp = line.find(" ", 16)
                colon = line.find(":", sp + 1) if sp > 16 else -1
                if colon > sp + 1:
                    host = line[16:sp]
                    lb = line.find("[", sp + 1, colon)
                    if lb < 0:
                        prog, pid = line[sp + 1:colon], None
                    elif line[colon - 1] == "]" and line[lb + 1:colon - 1].isdecimal():
                        prog, pid = line[sp + 1:lb], _pid(line[lb + 1:colon - 1])
                    else:
                        prog = None
                    if (prog and (prog in self._progs or self._valid(prog, _PROG_NAME, self._progs))
                            and (host in self._hosts or self._valid(host, _NOT_SPACE, self._hosts))):
                        end = colon + 2 if line[colon + 1:colon + 2] == " " else colon + 1
                        return LogLine(ts, host, prog, pid, line[end:])
            m = _CLASSIC_TAIL.match(line, 15)
            if m is not None:
                frac, host, prog, pid = m.groups()
                if frac:
                    ts = ts.replace(microsecond=_fraction(frac))
                return LogLine(ts, host, prog, _pid(pid), line[m.end():])
        return self._classic_slow(line)

    @staticmethod
    def _valid(name: str, pattern: re.Pattern, known: set[str]) -> bool:
        """Whether ``pattern`` matches all of a host or program name; valid names are
        remembered in ``known`` (names repeat; the set is bounded)."""
        if pattern.fullmatch(name) is None:
            return False
        if len(known) > 4096:
            known.clear()
        known.add(name)
        return True

    def _stamp(self, stamp: str) -> dt.datetime | None:
        """A classic time stamp (``Mar  3 10:00:01``) with its year; cached per distinct stamp.

        The cache is per second of log, so the year tracker sees every new second in order."""
        m = _CLASSIC_STAMP.match(stamp)
        ts = None
        if m is not None:
            mon, day, hh, mm, ss = m.groups()
            month = _MONTHS.get(mon)
            if month is not None:
                try:
                    ts = dt.datetime(self.years.year_for(month), month, int(day), int(hh), int(mm),
                                     int(ss), tzinfo=UTC)
                except ValueError:
                    ts = None
        if len(self._stamp_cache) > 256:
            self._stamp_cache.clear()
        self._stamp_cache[stamp] = ts
        return ts

    def _classic_slow(self, line: str) -> LogLine | None:
        m = _CLASSIC.match(line)
        if m is None:
            return None
        mon, day, hh, mm, ss, frac, host, prog, pid, msg = m.groups()
        key = (mon, day, hh, mm, ss, frac)
        ts = self._ts_cache.get(key)
        if ts is None:
            month = _MONTHS.get(mon)
            if month is None:
                return None
            try:
                ts = dt.datetime(self.years.year_for(month), month, int(day), int(hh), int(mm),
                                 int(ss), _fraction(frac), tzinfo=UTC)
            except ValueError:
                return None
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            self._ts_cache[key] = ts
        return LogLine(ts, host, prog, _pid(pid), msg)

    def _iso(self, line: str) -> LogLine | None:
        m = _ISO.match(line)
        if m is None:
            return None
        y, mo, d, hh, mm, ss, frac, zone, host, prog, pid, msg = m.groups()
        try:
            ts = dt.datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss), _fraction(frac),
                             tzinfo=_zone(zone)).astimezone(UTC)
        except (ValueError, OverflowError):    # an offset past year 1 or 9999
            return None
        return LogLine(ts, host, prog, _pid(pid), msg)

    def _rfc5424(self, line: str) -> LogLine | None:
        m = _RFC5424.match(line)
        if m is None:
            return None
        _pri, ts_text, host, app, procid, _msgid, _sd, msg = m.groups()
        ts = parse_iso_timestamp(ts_text) if ts_text != "-" else None
        if ts is None or app == "-":
            return None
        pid = _pid(procid)
        return LogLine(ts, None if host == "-" else host, app, pid, msg or "")

    def _resolver_own(self, line: str) -> LogLine | None:
        m = _RESOLVER_OWN.match(line)
        if m is None:
            return None
        y, mo, d, hh, mm, ss, ms, level, logger, msg = m.groups()
        try:
            ts = dt.datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss),
                             int(ms or 0) * 1000, tzinfo=UTC)
        except ValueError:
            return None
        return LogLine(ts, None, "mta-sts-daemon", None, f"{level} {logger}: {msg}")

    def _container(self, line: str) -> LogLine | None:
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                return None
            if not isinstance(obj, dict) or not isinstance(obj.get("log"), str):
                return None
            inner = obj["log"].rstrip("\r\n")
            try:
                inner.encode("utf-8")
            except UnicodeEncodeError:
                # a lone surrogate escape: not I-JSON (RFC 7493 section 2.1), no column holds
                # it; not a log line (quarantined with its raw bytes)
                return None
            got = self._inner(inner)
            if got is None and isinstance(obj.get("time"), str):
                ts = parse_iso_timestamp(obj["time"])
                if ts is not None:
                    # A docker line whose text is a bare resolver/Postfix message.
                    got = self._resolver_own(inner)
            return got
        m = _DOCKER_TS.match(line) or _COMPOSE.match(line)
        if m is None:
            return None
        rest = line[m.end():]
        if m.re is _DOCKER_TS:
            c = _COMPOSE.match(rest)
            if c is not None:
                rest = rest[c.end():]
        return self._inner(rest)

    def _inner(self, text: str) -> LogLine | None:
        for attempt in (self._classic, self._iso, self._rfc5424, self._resolver_own):
            got = attempt(text)
            if got is not None:
                return got
        return None


def split_program(program: str) -> tuple[str, str] | None:
    """A Postfix program name as (instance, daemon): ``postfix-a/smtpd`` -> (``postfix-a``, ``smtpd``).

    ``postfix/submission/smtpd`` -> (``postfix``, ``smtpd``); the middle is the master.cf
    service, kept in the full program name. None when it is not a Postfix program.
    """
    if "/" not in program:
        return None
    instance, _, rest = program.partition("/")
    if not instance.startswith("postfix"):
        return None
    daemon = rest.rpartition("/")[2]
    return (instance, daemon) if daemon else None


def classic_month(line: str) -> int | None:
    """The month (1-12) of a classic-syslog line's time stamp (its first 15 characters), or
    None when the line does not start with one: what guesses a log's first year."""
    m = _CLASSIC_STAMP.match(line[:15])
    return _MONTHS.get(m.group(1)) if m else None
