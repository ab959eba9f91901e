"""What one Postfix log message says: pure parsers from ``(daemon, text)`` to typed events.

The text is what follows ``postfix/<service>[pid]: ``. Each event is an immutable
NamedTuple (a tuple, so that a log of millions of lines stays fast); a message this
module does not interpret gives ``None`` and is stored raw by the caller. The
formats are Postfix's own (``smtpd(8)``, ``smtp(8)``, ``qmgr(8)``, ``cleanup(8)``,
``bounce(8)``, and the delivery-status line written by ``log_adhoc.c``); the TLS
lines are ``tls_client.c`` / ``tls_server.c`` at ``smtp[d]_tls_loglevel = 1``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# -- events ------------------------------------------------------------------


class Connect(NamedTuple):
    """smtpd: ``connect from NAME[ADDR]``: a receiving session starts."""
    client_name: str
    client_addr: str
    client_port: int | None


class Disconnect(NamedTuple):
    """smtpd: ``disconnect from NAME[ADDR] ehlo=1 ... commands=N``: the session ends."""
    client_name: str
    client_addr: str
    client_port: int | None
    commands: str | None


class SessionProblem(NamedTuple):
    """smtpd: ``lost connection after STAGE from ...``, ``timeout after ...``, ``SSL_accept error from ...``."""
    problem: str          # "lost connection", "timeout", "too many errors", "SSL_accept error", ...
    stage: str | None     # SMTP stage, e.g. "DATA", "STARTTLS"
    client_name: str
    client_addr: str
    detail: str | None


class TlsEstablished(NamedTuple):
    """``<Trust> TLS connection established (from|to) NAME[ADDR](:PORT): PROTO with cipher C (B/B bits)...``."""
    direction: str        # "from" (smtpd: a client) or "to" (smtp: a server)
    trust: str            # Anonymous | Untrusted | Trusted | Verified
    peer_name: str
    peer_addr: str
    peer_port: int | None
    protocol: str
    cipher: str
    cipher_bits: str      # "256/256"
    key_exchange: str | None
    server_signature: str | None
    server_signature_size: str | None   # "2048" bits or a curve like "P-256"
    server_digest: str | None


class TlsProblem(NamedTuple):
    """smtp: ``certificate verification failed for H[A]:P: reason`` or ``SSL_connect error to H[A]:P: reason``."""
    problem: str
    peer_name: str
    peer_addr: str
    peer_port: int | None
    detail: str


class ClientQueued(NamedTuple):
    """smtpd: ``QID: client=NAME[ADDR]``: the session handed a message to the queue."""
    queue_id: str
    client_name: str
    client_addr: str
    client_port: int | None
    sasl_username: str | None


class Rejected(NamedTuple):
    """smtpd/cleanup: ``QID|NOQUEUE: reject: STAGE from NAME[ADDR]: CODE X.Y.Z <data>: text; from=<> to=<>``."""
    queue_id: str
    action: str            # reject | reject_warning | discard | filter | milter-reject | ...
    stage: str
    client_name: str | None
    client_addr: str | None
    status_code: str | None
    enhanced_code: str | None
    status_data: str | None
    status_message: str
    sender: str | None
    recipient: str | None
    proto: str | None
    helo: str | None


class MessageIdSeen(NamedTuple):
    """cleanup: ``QID: message-id=<id>``."""
    queue_id: str
    message_id: str


class QueueActive(NamedTuple):
    """qmgr: ``QID: from=<sender>, size=N, nrcpt=N (queue active)``."""
    queue_id: str
    sender: str
    size: int | None
    nrcpt: int | None


class Removed(NamedTuple):
    """qmgr: ``QID: removed``: the message left the queue."""
    queue_id: str


class Expired(NamedTuple):
    """qmgr: ``QID: from=<sender>, status=expired, returned to sender``."""
    queue_id: str
    sender: str
    status: str


class Pickup(NamedTuple):
    """pickup: ``QID: uid=N from=<sender>``: a locally submitted message."""
    queue_id: str
    uid: int | None
    sender: str


class Delivery(NamedTuple):
    """A delivery attempt: ``QID: to=<rcpt>, relay=..., delay=..., dsn=X.Y.Z, status=S (reason)``."""
    queue_id: str
    recipient: str
    orig_recipient: str | None
    relay: str
    relay_host: str | None
    relay_addr: str | None
    relay_port: int | None
    conn_use: int | None
    delay: float | None
    delays: tuple[float | None, float | None, float | None, float | None]
    tls_feature: str | None      # Postfix >= 3.10 "tls=" delivery-status field, verbatim
    dsn: str
    status: str                  # sent | deferred | bounced | expired | undeliverable | ...
    reason: str
    reason_truncated: bool       # the line was cut short (syslog's line limit): no closing ")"


class Notice(NamedTuple):
    """bounce: ``QID: sender non-delivery notification: NQID`` (also delay / delivery status / success)."""
    queue_id: str
    recipient: str               # sender | postmaster
    kind: str                    # non-delivery | delay | delivery status | success
    notice_queue_id: str


class RemoteProblem(NamedTuple):
    """smtp: ``connect to H[A]:P: error``, ``QID: host H[A] said: ... (in reply to X command)``,
    ``QID: lost connection with H[A] while ...``, ``QID: conversation with ... timed out while ...``."""
    queue_id: str | None
    problem: str         # connect | said | lost connection | timed out | refused to talk
    peer_name: str
    peer_addr: str
    peer_port: int | None
    response: str | None
    stage: str | None


class Diagnostic(NamedTuple):
    """``[QID: ]warning|error|fatal|panic|info: [NAME[ADDR]: ]text[; from=<..> to=<..>]``; level None for
    a queue-file note such as qmgr's ``skipped, still being delivered``."""
    queue_id: str | None
    level: str | None
    text: str
    peer_name: str | None
    peer_addr: str | None
    kv: str | None


Event = (Connect | Disconnect | SessionProblem | TlsEstablished | TlsProblem | ClientQueued
         | Rejected | MessageIdSeen | QueueActive | Removed | Expired | Pickup | Delivery
         | Notice | RemoteProblem | Diagnostic)

# -- patterns ------------------------------------------------------------------

_QID = r"(?:[0-9A-F]{5,}|[0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz]{9,}|NOQUEUE)"
_QID_PREFIX = re.compile(r"(" + _QID + r"): ")
_PEER = r"([^\s\[\]]*)\[([^\]]*)\](?::(\d+))?"
# The ``; from=<..> to=<..> proto=.. helo=<..>`` tail of a reject or a diagnostic.
_KV_TAIL = r"((?=from=|to=)(?:from=<[^>]*>)? ?(?:to=<[^>]*>)?(?: proto=\S+)?(?: helo=<[^>]*>)?)"

_CONNECT = re.compile(r"connect from " + _PEER + r"(?: |$)")
_DISCONNECT = re.compile(r"disconnect from " + _PEER + r"(?: (.*))?$")
_TLS = re.compile(
    r"(Anonymous|Untrusted|Trusted|Verified) TLS connection established (from|to) " + _PEER
    + r": (\S+) with cipher (\S+) \((\d+/\d+) bits\)"
    r"(?: key-exchange (\S+))?(?: server-signature (\S+) \(([^)]*?)(?: bits)?\))?(?: server-digest (\S+))?")
_SESSION_PROBLEM = re.compile(
    r"(lost connection|timeout|too many errors|bare <LF> received|improper command pipelining"
    r"|SSL_accept error) (?:after (\S+(?: \w+)?)(?: \([^)]*\))? )?from " + _PEER + r"(?::? ?(.*))?$", re.S)
_CLIENT = re.compile(r"client=" + _PEER + r"(?:, sasl_method=[^,]*, sasl_username=([^,]*))?")
_REJECT = re.compile(
    r"([\w-]+): (\S+(?: TO| FROM| of DATA|-OF-MESSAGE)?) from " + _PEER + r": "
    r"(?:(\d{3}) )?(?:(\d\.\d{1,3}\.\d{1,3}) )?(?:<([^>]*)>: |Service unavailable; [\w ]+ \[([^\]]*)\] )?(.*?)"
    r"(?:; " + _KV_TAIL + r")?$", re.S)
_KV_FROM = re.compile(r"from=<([^>]*)>")
_KV_TO = re.compile(r"to=<([^>]*)>")
_KV_PROTO = re.compile(r"proto=(\S+)")
_KV_HELO = re.compile(r"helo=<([^>]*)>")
_MESSAGE_ID = re.compile(r"message-id=<?(.*?)>?$", re.S)
_QUEUE_ACTIVE = re.compile(r"from=<([^>]*)>, size=(\d+), nrcpt=(\d+)")
_EXPIRED = re.compile(r"from=<([^>]*)>, status=(expired|\w+), returned to sender")
_PICKUP = re.compile(r"uid=(\d+) from=<([^>]*)>")
_DELIVERY = re.compile(
    r"to=<?([^>,]*)>?, (?:orig_to=<?([^>,]*)>?, )?relay=([^,]*), (?:conn_use=(\d+), )?"
    r"delay=([\d.]+), delays=([\d./]+), (?:tls=([^,]*), )?dsn=(\d\.\d{1,3}\.\d{1,3}), "
    r"status=(\S+) \((.*?)(\)?)$", re.S)
_RELAY = re.compile(r"([^\[\]]*)\[([^\]]*)\](?::(\d+))?$")
_NOTICE = re.compile(r"(sender|postmaster) (non-delivery|delay|delivery status|success) notification: (\S+)$")
_CONNECT_TO = re.compile(r"connect to " + _PEER + r": (.*)$", re.S)
_SAID = re.compile(r"host " + _PEER + r" (said|refused to talk to me): (.*?)(?: \(in reply to (.*) command\))?$", re.S)
_LOST = re.compile(r"lost connection with " + _PEER + r" while (.*)$", re.S)
_TIMED_OUT = re.compile(r"conversation with " + _PEER + r" timed out while (.*)$", re.S)
_CERT_FAILED = re.compile(r"(?:server )?(certificate verification failed) for " + _PEER + r": (.*)$", re.S)
_SSL_CONNECT = re.compile(r"(SSL_connect error) to " + _PEER + r": (.*)$", re.S)
_TLS_STARTS = ("Anonymous TLS ", "Untrusted TLS ", "Trusted TLS ", "Verified TLS ")
_LEVELS = ("warning", "error", "fatal", "panic", "info")
_PEER_PREFIX = re.compile(r"([^\s\[\]]+)\[([0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*|unknown)\]: ")
_TRAILING_KV = re.compile(r"(.*?); " + _KV_TAIL + "$", re.S)
_SASL_FAILED = re.compile(r"SASL authentication failed; server " + _PEER + r" said: (.*)$", re.S)
_PIX = re.compile(r"enabling PIX workarounds: (.*) for " + _PEER + r"$")
_COMMAND_COUNT = re.compile(r"([a-z]+)=(\d+)(?:/(\d+))?")


def _number(text: str | None) -> int | None:
    """Digits as an int when they fit a 64-bit column (18 at most), else None."""
    return int(text) if text and len(text) <= 18 else None


_port = _number


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _delays(text: str) -> tuple[float | None, float | None, float | None, float | None]:
    parts = text.split("/")
    if len(parts) != 4:
        return (None, None, None, None)
    return (_float(parts[0]), _float(parts[1]), _float(parts[2]), _float(parts[3]))


def _diagnostic(text: str, queue_id: str | None = None) -> Diagnostic | None:
    level, sep, rest = text.partition(": ")
    if sep and level in _LEVELS:
        m = _QID_PREFIX.match(rest)
        if m and queue_id is None and m.group(1) != "NOQUEUE":
            queue_id, rest = m.group(1), rest[m.end():]
        name = addr = kv = None
        p = _PEER_PREFIX.match(rest)
        if p is not None:
            name, addr, rest = p.group(1), p.group(2), rest[p.end():]
        k = _TRAILING_KV.match(rest)
        if k is not None:
            rest, kv = k.group(1), k.group(2)
        return Diagnostic(queue_id, level, rest, name, addr, kv)
    return None


def parse_delivery(queue_id: str, body: str) -> Delivery | None:
    """The delivery-status line (any delivery agent): ``to=<..>, relay=.., ... status=S (reason)``."""
    m = _DELIVERY.match(body)
    if m is None:
        return None
    to, orig, relay, conn_use, delay, delays, tls, dsn, status, reason, close = m.groups()
    host, addr, port = parse_relay(relay)
    # A line cut by syslog's line limit (often 1024 bytes) loses the reason's closing ")":
    # the delivery stands, its reason is marked truncated.
    return Delivery(queue_id, to, orig, relay, host, addr, port, _port(conn_use), _float(delay),
                    _delays(delays), tls, dsn, status, reason, not close)


def parse_tls_established(text: str) -> TlsEstablished | None:
    m = _TLS.match(text)
    if m is None:
        return None
    (trust, direction, name, addr, port, proto, cipher, bits, kex, sig, sig_size,
     digest) = m.groups()
    return TlsEstablished(direction, trust, name, addr, _port(port), proto, cipher, bits, kex, sig,
                          sig_size, digest)


def _rejected(queue_id: str, body: str) -> Rejected | None:
    m = _REJECT.match(body)
    if m is None:
        return None
    action, stage, name, addr, _p, code, enhanced, data, data_bracket, text, kv = m.groups()
    data = data if data is not None else data_bracket
    sender = recipient = proto = helo = None
    if kv:
        f, t, p, h = _KV_FROM.search(kv), _KV_TO.search(kv), _KV_PROTO.search(kv), _KV_HELO.search(kv)
        sender = f.group(1) if f else None
        recipient = t.group(1) if t else None
        proto = p.group(1) if p else None
        helo = h.group(1) if h else None
    return Rejected(queue_id, action, stage, name, addr, code, enhanced, data, text, sender,
                    recipient, proto, helo)


# -- per daemon ----------------------------------------------------------------


def parse_smtpd(text: str) -> Event | None:
    """smtpd(8): sessions, TLS, queue hand-off, rejects."""
    c0 = text[:1]
    if c0 == "c" and text.startswith("connect from "):
        m = _CONNECT.match(text)
        return Connect(m.group(1), m.group(2), _port(m.group(3))) if m else None
    if c0 == "d" and text.startswith("disconnect from "):
        m = _DISCONNECT.match(text)
        return Disconnect(m.group(1), m.group(2), _port(m.group(3)), m.group(4)) if m else None
    if text.startswith(_TLS_STARTS):
        return parse_tls_established(text)
    m = _QID_PREFIX.match(text)
    if m is not None:
        qid = m.group(1)
        body = text[m.end():]
        if body.startswith("client="):
            c = _CLIENT.match(body)
            if c:
                return ClientQueued(qid, c.group(1), c.group(2), _port(c.group(3)), c.group(4))
            return None
        return _rejected(qid, body) or _diagnostic(body, qid)
    m = _SESSION_PROBLEM.match(text)
    if m is not None:
        problem, stage, name, addr, _p, detail = m.groups()
        return SessionProblem(problem, stage, name, addr, detail)
    return _diagnostic(text)


def parse_smtp(text: str) -> Event | None:
    """smtp(8) / lmtp(8): delivery attempts, TLS to the server, connection problems."""
    m = _QID_PREFIX.match(text)
    if m is not None:
        qid = m.group(1)
        body = text[m.end():]
        if body.startswith("to="):
            return parse_delivery(qid, body)
        for pattern, problem in ((_SAID, None), (_LOST, "lost connection"), (_TIMED_OUT, "timed out")):
            r = pattern.match(body)
            if r is not None:
                if problem is None:
                    name, addr, port, verb, resp, stage = r.groups()
                    return RemoteProblem(qid, "said" if verb == "said" else "refused to talk",
                                         name, addr, _port(port), resp, stage)
                name, addr, port, stage = r.groups()
                return RemoteProblem(qid, problem, name, addr, _port(port), None, stage)
        r = _SASL_FAILED.match(body)
        if r is not None:
            name, addr, port, resp = r.groups()
            return RemoteProblem(qid, "SASL authentication failed", name, addr, _port(port), resp, None)
        r = _PIX.match(body)
        if r is not None:
            workarounds, name, addr, port = r.groups()
            return RemoteProblem(qid, "PIX workarounds", name, addr, _port(port), workarounds, None)
        return _diagnostic(body, qid)
    if text.startswith(_TLS_STARTS):
        return parse_tls_established(text)
    r = _CONNECT_TO.match(text)
    if r is not None:
        name, addr, port, detail = r.groups()
        return RemoteProblem(None, "connect", name, addr, _port(port), detail, None)
    for pattern in (_CERT_FAILED, _SSL_CONNECT):
        r = pattern.match(text)
        if r is not None:
            problem, name, addr, port, detail = r.groups()
            return TlsProblem(problem, name, addr, _port(port), detail)
    return _diagnostic(text)


def parse_delivery_agent(text: str) -> Event | None:
    """local(8), virtual(8), pipe(8), error(8), discard(8), retry: the delivery-status line."""
    m = _QID_PREFIX.match(text)
    if m is not None:
        body = text[m.end():]
        if body.startswith("to="):
            return parse_delivery(m.group(1), body)
        return _diagnostic(body, m.group(1))
    return _diagnostic(text)


def parse_qmgr(text: str) -> Event | None:
    """qmgr(8): a message enters the active queue, expires, or is removed."""
    m = _QID_PREFIX.match(text)
    if m is None:
        return _diagnostic(text)
    qid = m.group(1)
    body = text[m.end():]
    if body == "removed":
        return Removed(qid)
    if body.startswith("from="):
        q = _QUEUE_ACTIVE.match(body)
        if q:
            return QueueActive(qid, q.group(1), _number(q.group(2)), _number(q.group(3)))
        e = _EXPIRED.match(body)
        if e:
            return Expired(qid, e.group(1), e.group(2))
        return None
    if body.startswith("to="):
        return parse_delivery(qid, body)   # qmgr writes status=deferred for a dead destination
    return _diagnostic(body, qid) or Diagnostic(qid, None, body, None, None, None)


def parse_cleanup(text: str) -> Event | None:
    """cleanup(8): the Message-ID, header/body checks, milter actions."""
    m = _QID_PREFIX.match(text)
    if m is None:
        return _diagnostic(text)
    qid = m.group(1)
    body = text[m.end():]
    if body.startswith("message-id="):
        value = body[11:]
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        return MessageIdSeen(qid, value)
    if body.startswith(("reject:", "milter-reject:")):
        return _rejected(qid, body)
    return _diagnostic(body, qid)


def parse_bounce(text: str) -> Event | None:
    """bounce(8): the notices sent to the sender or the postmaster."""
    m = _QID_PREFIX.match(text)
    if m is None:
        return _diagnostic(text)
    n = _NOTICE.match(text[m.end():])
    if n is not None:
        return Notice(m.group(1), n.group(1), n.group(2), n.group(3))
    return _diagnostic(text[m.end():], m.group(1))


def parse_pickup(text: str) -> Event | None:
    """pickup(8): ``QID: uid=N from=<sender>``."""
    m = _QID_PREFIX.match(text)
    if m is None:
        return _diagnostic(text)
    p = _PICKUP.match(text[m.end():])
    if p is not None:
        return Pickup(m.group(1), _number(p.group(1)), p.group(2))
    return _diagnostic(text[m.end():], m.group(1))


def parse_other(text: str) -> Event | None:
    """Any other daemon: only its diagnostics (``warning: ...``) are interpreted."""
    return _diagnostic(text)


PARSERS = {
    "smtpd": parse_smtpd,
    "smtp": parse_smtp,
    "lmtp": parse_smtp,
    "relay": parse_smtp,
    "local": parse_delivery_agent,
    "virtual": parse_delivery_agent,
    "pipe": parse_delivery_agent,
    "error": parse_delivery_agent,
    "retry": parse_delivery_agent,
    "discard": parse_delivery_agent,
    "qmgr": parse_qmgr,
    "cleanup": parse_cleanup,
    "bounce": parse_bounce,
    "pickup": parse_pickup,
}


def parse_message(daemon: str, text: str) -> Event | None:
    """Interpret the text of a Postfix log line from ``daemon``; None when not interpreted."""
    return PARSERS.get(daemon, parse_other)(text)


def parse_tls_feature(value: str) -> dict[str, str | None]:
    """Postfix >= 3.10's ``tls=`` delivery field: ``level[?][:downgrade][/[!]requiretls[?][:reason]]``."""
    m = re.fullmatch(
        r"([a-z-]+)(\?)?(?::([\w-]+))?(?:/(!)?(requiretls)(\?)?(?::([\w-]+))?)?", value)
    if m is None:
        return {"security_level": None}
    level, undecided, downgrade, violation, req, req_undecided, req_reason = m.groups()
    return {"security_level": level, "policy_undecided": undecided, "downgrade_level": downgrade,
            "requiretls": req, "requiretls_policy_violation": violation,
            "requiretls_policy_undecided": req_undecided, "requiretls_downgrade_level": req_reason}


def parse_command_counts(value: str) -> dict[str, tuple[int | None, int]]:
    """smtpd's disconnect counters ``ehlo=2 rcpt=0/1 commands=5/7`` as {cmd: (accepted, total)};
    accepted is None when the counter has no ``/`` (all were accepted)."""
    out: dict[str, tuple[int | None, int]] = {}
    for name, first, second in _COMMAND_COUNT.findall(value):
        out[name] = (int(first), int(second)) if second else (None, int(first))
    return out


def parse_relay(value: str) -> tuple[str, str | None, int | None]:
    """A delivery line's ``relay=`` value as (host, address or service, port)."""
    r = _RELAY.match(value)
    if r is None:
        return value, None, None
    return r.group(1), r.group(2), _port(r.group(3))
