"""Policy-server access logs: who fetched ``/.well-known/mta-sts.txt``, when, for which lab domain.

Formats (one per line; parsing never raises):

* :data:`LAB_NGINX_LOG_FORMAT`: our lab's nginx ``log_format``: combined, preceded by ``$host``.
  The host says which lab domain's policy was fetched (``mta-sts.<label>.<lab domain>``).
* Apache ``vhost_combined`` (``%v:%p`` first): the same, with a port.
* nginx/Apache ``combined``: no host, so a fetch counts for the lab as a whole (host NULL).
* JSON lines (nginx ``escape=json`` or any access log as JSON), with the usual key names.

RFC 8461 section 3.3: the policy is fetched from ``https://mta-sts.<domain>/.well-known/mta-sts.txt``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Iterable, Iterator, NamedTuple

from collectors.lab_ingest.postfix_envelope import parse_iso_timestamp
from collectors.lab_ingest.records import Quarantined
from collectors.rfc import MAX_EXACT_INTEGER, ijson_violation

#: The nginx ``log_format`` our lab's policy server writes (docs/lab-ingest.md).
#: Use it in nginx.conf as ``log_format mtasts_lab '<this>';`` then ``access_log ... mtasts_lab;``.
LAB_NGINX_LOG_FORMAT = ('$host $remote_addr - $remote_user [$time_local] "$request" $status '
                        '$body_bytes_sent "$http_referer" "$http_user_agent"')
LAB_NGINX_LOG_FORMAT_NAME = "mtasts_lab"
POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_LINE_CHARS = 64 * 1024

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_Q = r'"((?:[^"\\]|\\.)*)"'
_COMBINED = re.compile(
    r"(?:(\S+?)(?::(\d+))? )?(\S+) (\S+) (\S+) \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d+))? ([+-]\d{4})\] " + _Q + r" (\d{3}) (\d+|-)(?: " + _Q + r" " + _Q + r")?(.*)$")
_IP = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$")


class HttpRequest(NamedTuple):
    """One access-log entry (a policy fetch when ``is_policy_fetch``)."""

    fetched_at: dt.datetime
    client_addr: str | None
    host: str | None
    policy_domain: str | None
    server_label: str | None
    method: str | None
    path: str | None
    protocol: str | None
    status: int | None
    bytes_sent: int | None
    referer: str | None
    user_agent: str | None
    forwarded_for: str | None
    is_policy_fetch: bool
    log_format: str
    position: str


def policy_domain_of(host: str | None) -> tuple[str | None, str | None]:
    """``mta-sts.a.lab.example[:443]`` -> (``a.lab.example``, ``a``); the label is the first label."""
    if not host or host == "-" or host == "_":
        return None, None
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") or _IP.match(h.rsplit(":", 1)[0] if h.count(":") == 1 else h):
        return None, None
    h = h.split(":", 1)[0]
    domain = h[len("mta-sts."):] if h.startswith("mta-sts.") else h
    return domain, domain.split(".", 1)[0] if domain else None


def _unescape(value: str | None) -> str | None:
    if value is None or value == "-":
        return None
    if "\\" in value:
        try:
            value = value.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except (UnicodeDecodeError, ValueError):
            pass
    return value


def _request_parts(request: str | None) -> tuple[str | None, str | None, str | None]:
    if not request:
        return None, None, None
    parts = request.split(" ")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1], None
    return None, request, None


def _is_fetch(method: str | None, path: str | None) -> bool:
    return method in ("GET", "HEAD") and path is not None and path.split("?", 1)[0] == POLICY_PATH


def parse_line(line: str, position: str = "") -> HttpRequest | None:
    """One access-log line (combined, lab host + combined, vhost_combined, or JSON); None if not one."""
    got = _parse(line, position)
    return None if isinstance(got, str) else got


_NOT_ACCESS_LOG = "not an access-log line"


def _parse(line: str, position: str) -> HttpRequest | str:
    """One access-log line, or why it is not one."""
    text = line.strip()
    if not text:
        return _NOT_ACCESS_LOG
    if text.startswith("{"):
        return _parse_json(text, position)
    m = _COMBINED.match(text)
    if m is None:
        return _NOT_ACCESS_LOG
    (vhost, vport, remote, _ident, _user, day, mon, year, hh, mm, ss, frac, zone, request, status,
     size, referer, agent, _rest) = m.groups()
    month = _MONTHS.get(mon)
    if month is None:
        return _NOT_ACCESS_LOG
    if size != "-" and _int(size) is None:
        return f"body size {size[:40]} is beyond {MAX_EXACT_INTEGER} (no column holds it)"
    try:
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
        at = dt.datetime(int(year), month, int(day), int(hh), int(mm), int(ss),
                         int((frac or "0").ljust(6, "0")[:6]), tzinfo=tz).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        return _NOT_ACCESS_LOG
    method, path, proto = _request_parts(_unescape(request))
    if vhost is not None:
        fmt = "vhost_combined" if vport else "lab_host_combined"
    else:
        fmt = "combined"
    host = vhost if vhost not in (None, "-", "_") else None
    domain, label = policy_domain_of(host)
    return HttpRequest(at, remote, host, domain, label, method, path, proto, int(status),
                       None if size == "-" else int(size), _unescape(referer), _unescape(agent), None,
                       _is_fetch(method, path), fmt, position)


_JSON_KEYS = {
    "time": ("time_iso8601", "time", "@timestamp", "timestamp", "ts", "time_local", "date"),
    "client": ("remote_addr", "client", "client_ip", "remote_ip", "ip", "clientip", "remote"),
    "host": ("host", "http_host", "server_name", "vhost", "hostname"),
    "request": ("request",),
    "method": ("request_method", "method", "verb"),
    "path": ("request_uri", "uri", "path", "url"),
    "protocol": ("server_protocol", "protocol"),
    "status": ("status", "status_code", "response"),
    "bytes": ("body_bytes_sent", "bytes_sent", "bytes", "size"),
    "referer": ("http_referer", "referer", "referrer"),
    "agent": ("http_user_agent", "user_agent", "agent", "useragent"),
    "xff": ("http_x_forwarded_for", "x_forwarded_for", "forwarded_for"),
}


def _get(obj: dict, kind: str) -> object:
    for key in _JSON_KEYS[kind]:
        value = obj.get(key)
        if value not in (None, "", "-"):
            return value
    return None


def _json_time(value: object) -> dt.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    at = parse_iso_timestamp(value)
    if at is not None:
        return at
    m = re.match(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})$", value)
    if m is None or m.group(2) not in _MONTHS:
        return None
    zone = m.group(7)
    tz = dt.timezone((1 if zone[0] == "+" else -1) * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
    try:
        return dt.datetime(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)), int(m.group(4)),
                           int(m.group(5)), int(m.group(6)), tzinfo=tz).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def _int(value: object) -> int | None:
    """An integer within I-JSON's exact range (RFC 7493 2.2), else None (never raises)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        return None
    return number if abs(number) <= MAX_EXACT_INTEGER else None


def _parse_json(text: str, position: str) -> HttpRequest | str:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_ACCESS_LOG
    if not isinstance(obj, dict):
        return _NOT_ACCESS_LOG
    violation = ijson_violation(obj)
    if violation is not None:
        return f"not I-JSON: {violation}"
    at = _json_time(_get(obj, "time"))
    method, path, proto = _request_parts(_get(obj, "request") if isinstance(_get(obj, "request"), str) else None)
    method = method or (str(_get(obj, "method")) if _get(obj, "method") else None)
    path = path or (str(_get(obj, "path")) if _get(obj, "path") else None)
    proto = proto or (str(_get(obj, "protocol")) if _get(obj, "protocol") else None)
    status = _int(_get(obj, "status"))
    if at is None or path is None or status is None:
        return _NOT_ACCESS_LOG
    host = _get(obj, "host")
    host = str(host) if host is not None else None
    domain, label = policy_domain_of(host)
    s = lambda v: None if v is None else str(v)  # noqa: E731
    return HttpRequest(at, s(_get(obj, "client")), host, domain, label, method, path, proto, status,
                       _int(_get(obj, "bytes")), s(_get(obj, "referer")), s(_get(obj, "agent")),
                       s(_get(obj, "xff")), _is_fetch(method, path), "json", position)


def parse_lines(lines: Iterable[tuple[int, int, str]]) -> Iterator[HttpRequest | Quarantined]:
    """``lines`` are (byte offset, line number, text); blank lines are skipped."""
    for offset, lineno, text in lines:
        if not text.strip():
            continue
        position = f"line {lineno}"
        if len(text) > MAX_LINE_CHARS:
            yield Quarantined(position, text[:MAX_LINE_CHARS].encode("utf-8", "replace"),
                              f"access-log line longer than {MAX_LINE_CHARS} characters")
            continue
        got = _parse(text, position)
        if isinstance(got, str):
            yield Quarantined(position, text.encode("utf-8", "replace"), got)
        else:
            yield got


def sniff(head: bytes) -> bool:
    """Most of the first lines parse as access-log lines."""
    lines = [ln for ln in head.decode("utf-8", "replace").splitlines()[:20] if ln.strip()]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]
    if not lines:
        return False
    ok = sum(1 for ln in lines if parse_line(ln) is not None)
    return ok * 2 > len(lines)
