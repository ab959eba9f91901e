"""Observe one domain: the DNS questions, the policy fetch and (optionally) the SMTP probes,
as raw rows plus the RFC parsers' reading of them. Nothing here classifies into the
export vocabulary; that is the SQL views' job.

Lookups shared between domains (TLSA and SMTP of a common MX host) are made once per run
through :class:`SharedLookups`. Connections to a policy or MX address go through an
:class:`~collectors.crawl.gate.AddressGate` (a few at a time per address, a circuit
breaker for an address that stopped answering), and each domain's total time is bounded
(``domain_timeout``); a domain waiting for an address slot hands its share of the
crawl's concurrency (its :class:`~collectors.crawl.gate.Turn`) back meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from collectors.crawl import wire
from collectors.crawl.gate import AddressGate, Denied, Turn
from collectors.crawl.policy_fetch import MAX_POLICY_BYTES, FetchResult, fetch_policy
from collectors.crawl.resolver import DnsClient, Lookup
from collectors.crawl.smtp_probe import SmtpProbe, probe_mx
from collectors.rfc import classify_mismatch, mx_matches, parse_sts_policy, parse_sts_record, parse_tlsrpt_record

Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ObserveConfig:
    https_port: int = 443
    smtp_port: int = 25
    timeout: float = 10.0           # bound of one policy fetch / SMTP probe
    probe_smtp: bool = False
    per_host: int = 8               # parallel connections to one address
    host_lookups: bool = True       # TLSA (and SMTP) of MX hosts inline; False: the caller
                                    # looks them up once per run (observe_host; the Dask crawl)
    domain_timeout: float = 60.0    # bound of one domain's (or MX host's) whole observation
    breaker_threshold: int = 3      # unanswered attempts in a row that open an address's circuit
    breaker_cooldown: float = 60.0  # seconds an open circuit refuses before one trial


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _findings_json(findings: Any) -> str:
    return json.dumps([{"code": f.code, "severity": f.severity, "message": f.message} for f in findings or ()])


def _txt_json(records: list[tuple[bytes, ...]]) -> str:
    return json.dumps([[s.decode("utf-8", "backslashreplace") for s in r] for r in records])


def follow(lookup: Lookup, rdtype: int) -> tuple[list[str], list[wire.Record]]:
    """The CNAME chain from the question name (RFC 1034 3.6.2) and the records of ``rdtype``
    owned by its end."""
    resp = lookup.response
    if resp is None or not resp.answer:
        return [], []
    name = lookup.qname.lower().rstrip(".")
    chain: list[str] = []
    cnames = {r.name: r.data for r in resp.answer if r.rdtype == wire.CNAME}
    while name in cnames and len(chain) < 16:
        name = cnames[name]  # type: ignore[assignment]
        chain.append(name)
    return chain, [r for r in resp.answer if r.rdtype == rdtype and r.name == name]


class SharedLookups:
    """Run-wide single-flight cache: the first caller computes, later callers await the same
    future. Bounded (LRU) so memory stays flat over a million distinct hosts."""

    def __init__(self, limit: int = 50_000) -> None:
        self._entries: OrderedDict[Any, asyncio.Future[Any]] = OrderedDict()
        self._limit = limit

    async def get(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        fut = self._entries.get(key)
        if fut is not None:
            self._entries.move_to_end(key)
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._entries[key] = fut
        if len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        try:
            value = await compute()
        except BaseException as exc:
            self._entries.pop(key, None)
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved
            raise
        fut.set_result(value)
        return value


class Observer:
    """Observes domains against one resolver; emits per-host rows through ``emit_host``."""

    def __init__(self, dns: DnsClient, config: ObserveConfig, context: ssl.SSLContext,
                 emit_host: Callable[[str, dict[str, Any]], None],
                 active: asyncio.Semaphore | None = None) -> None:
        self.dns = dns
        self.config = config
        self.context = context
        self.emit_host = emit_host
        self.active = active  # the crawl's concurrency: a domain holds one while it works
        self._tlsa = SharedLookups()
        self._smtp = SharedLookups()
        gate = {"per_address": config.per_host, "threshold": config.breaker_threshold,
                "cooldown": config.breaker_cooldown}
        self.https_gate = AddressGate(**gate)
        self.smtp_gate = AddressGate(**gate)
        self.fetches = 0
        self.probes = 0

    def _turn(self) -> Turn:
        return Turn(self.active, self.config.domain_timeout)

    async def observe(self, domain: str) -> Rows:
        """Every row for ``domain``; an unexpected failure is kept in ``error``, never raised.
        Bounded: past ``domain_timeout`` (plus one fetch's grace) the domain is recorded
        with the error instead of its observations."""
        started = time.monotonic()
        try:
            async with self._turn() as turn:  # waiting for a turn is not the domain's time
                started = time.monotonic()
                async with asyncio.timeout(self.config.domain_timeout + self.config.timeout):
                    rows = await self._observe(domain, turn)
        except Exception as exc:  # keep the domain, record why it is incomplete
            error = (f"the domain's time bound ({self.config.domain_timeout:g}s) ran out" if
                     isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}")
            rows = {"crawl_observations": [{
                "domain": domain, "observed_at": _now(), "mx_rcode": "ERROR", "sts_rcode": "ERROR",
                "tlsrpt_rcode": "ERROR", "error": error[:500],
            }]}
        obs = rows["crawl_observations"][0]
        obs["duration_ms"] = (time.monotonic() - started) * 1000
        return rows

    async def _observe(self, domain: str, turn: Turn) -> Rows:
        observed_at = _now()
        sts_task = asyncio.ensure_future(self.dns.query(f"_mta-sts.{domain}", wire.TXT))
        rpt_task = asyncio.ensure_future(self.dns.query(f"_smtp._tls.{domain}", wire.TXT))
        mx = await self.dns.query(domain, wire.MX)
        cd_rcode = None
        if mx.status == "SERVFAIL":
            # RFC 4035 3.2.2: with CD set the resolver skips validation; an answer now means
            # the SERVFAIL was a validation failure (bogus), not a broken zone.
            cd_rcode = (await self.dns.query(domain, wire.MX, cd=True)).status
        mx_chain, mx_records = follow(mx, wire.MX)
        exchanges = sorted((r.data[0], r.data[1]) for r in mx_records)  # (preference, host)
        hosts = list(dict.fromkeys(h for _, h in exchanges if h))
        # The SMTP probes are slow (seconds); start them now, beside everything else.
        smtp_task = (asyncio.ensure_future(self._smtp_all(hosts, turn))
                     if hosts and self.config.probe_smtp and self.config.host_lookups else None)
        if not self.config.host_lookups:
            hosts = []  # the MX rows below still list every host

        sts, rpt = await sts_task, await rpt_task  # asked with the MX query: usually done
        sts_chain, sts_txt = follow(sts, wire.TXT)
        sts_strings = [r.data for r in sts_txt]
        record = parse_sts_record([list(s) for s in sts_strings])
        rpt_chain, rpt_txt = follow(rpt, wire.TXT)
        rpt_strings = [r.data for r in rpt_txt]
        tlsrpt = parse_tlsrpt_record([list(s) for s in rpt_strings])

        policy_row = None
        patterns: list[str] | None = None
        if sts.status in ("NOERROR", "NXDOMAIN") and record.status == "valid":
            tlsa_task = asyncio.ensure_future(self._tlsa_all(hosts)) if hosts else None
            policy_row, patterns = await self._policy(domain, turn)
            if tlsa_task is not None:
                await tlsa_task
        elif hosts:
            await self._tlsa_all(hosts)  # the common case: no task, no gather

        mx_rows = []
        for pref, host in exchanges:
            covered = subclass = None
            if host and patterns is not None:
                covered = mx_matches(host, patterns)
                if not covered:
                    subclass = classify_mismatch(host, patterns)
            mx_rows.append({"domain": domain, "observed_at": observed_at, "mx_host": host,
                            "preference": pref, "covered": covered, "mismatch_subclass": subclass})
        # duplicate MX records for one host (different preferences) keep the best one
        seen: set[str] = set()
        mx_rows = [r for r in mx_rows if not (r["mx_host"] in seen or seen.add(r["mx_host"]))]

        if smtp_task is not None:
            await smtp_task

        obs = {
            "domain": domain, "observed_at": observed_at,
            "mx_rcode": mx.status, "mx_ad": mx.ad if mx.response is not None else None,
            "mx_cd_rcode": cd_rcode,
            "mx_preferences": [p for p, _ in exchanges], "mx_exchanges": [h for _, h in exchanges],
            "mx_cname_chain": mx_chain, "mx_detail": mx.detail or None,
            "sts_rcode": sts.status, "sts_cname_chain": sts_chain,
            "sts_txt": _txt_json(sts_strings) if sts_strings else None,
            "sts_status": record.status, "sts_id": record.id,
            "sts_findings": _findings_json(record.findings),
            "tlsrpt_rcode": rpt.status, "tlsrpt_cname_chain": rpt_chain,
            "tlsrpt_txt": _txt_json(rpt_strings) if rpt_strings else None,
            "tlsrpt_status": tlsrpt.status, "tlsrpt_rua": list(tlsrpt.rua),
            "tlsrpt_findings": _findings_json(tlsrpt.findings),
        }
        rows: Rows = {"crawl_observations": [obs], "crawl_mx": mx_rows}
        if policy_row is not None:
            rows["crawl_policy"] = [policy_row]
        return rows

    # -- the policy (RFC 8461 3.3) ---------------------------------------------------
    async def _policy(self, domain: str, turn: Turn) -> tuple[dict[str, Any], list[str] | None]:
        host = f"mta-sts.{domain}"
        observed_at = _now()
        t0 = time.monotonic()
        a, aaaa = await asyncio.gather(self.dns.query(host, wire.A), self.dns.query(host, wire.AAAA))
        t_dns = (time.monotonic() - t0) * 1000
        chain, a_records = follow(a, wire.A)
        chain6, aaaa_records = follow(aaaa, wire.AAAA)
        addresses = [r.data for r in a_records] + [r.data for r in aaaa_records]
        row: dict[str, Any] = {
            "domain": domain, "observed_at": observed_at, "policy_host": host,
            "a_rcode": a.status, "aaaa_rcode": aaaa.status, "addresses": addresses,
            "cname_chain": chain or chain6, "port": self.config.https_port, "t_dns_ms": t_dns,
        }
        if not addresses:
            detail = f"A {a.status}, AAAA {aaaa.status}, no address" + (f" ({a.detail})" if a.detail else "")
            row.update(outcome="dns_error", phase="dns", detail=detail)
            return row, None
        address, port = addresses[0], self.config.https_port

        def fetch() -> Awaitable[FetchResult]:
            self.fetches += 1
            return fetch_policy(host, address, port=port, context=self.context,
                                timeout=self.config.timeout, max_bytes=MAX_POLICY_BYTES)
        result = await self.https_gate.run(address, port, turn, self.config.timeout, fetch, _fetch_unanswered)
        if isinstance(result, Denied):  # not contacted: the verdict and its reason
            result = FetchResult(outcome=result.code, address=address, port=port, phase="wait",
                                 detail=result.detail)
        row.update(_fetch_columns(result))
        patterns = None
        if result.outcome == "ok":
            policy = parse_sts_policy(result.body)
            row.update(policy_ok=policy.ok, policy_version=policy.version, policy_mode=policy.mode,
                       policy_max_age=policy.max_age, policy_mx=list(policy.mx),
                       policy_line_ending=policy.line_ending,
                       policy_findings=_findings_json(policy.findings))
            if policy.ok:
                patterns = list(policy.mx)
        return row, patterns

    # -- per MX host, once per run -----------------------------------------------------
    async def observe_host(self, host: str) -> None:
        """The per-host facts of one MX host (TLSA; the SMTP probe with ``probe_smtp``),
        emitted as rows: for a caller that finds a run's hosts itself (host_lookups off)."""
        async with self._turn() as turn:
            tlsa = self._tlsa.get(host, lambda: self._tlsa_lookup(host))
            if self.config.probe_smtp:
                await asyncio.gather(tlsa, self._smtp.get(host, lambda: self._smtp_probe(host, turn)))
            else:
                await tlsa

    async def _tlsa_all(self, hosts: list[str]) -> list[Any]:
        if len(hosts) == 1:
            host = hosts[0]
            return [await self._tlsa.get(host, lambda: self._tlsa_lookup(host))]
        return await asyncio.gather(*(self._tlsa.get(h, lambda h=h: self._tlsa_lookup(h)) for h in hosts))

    async def _tlsa_lookup(self, host: str) -> bool:
        lookup = await self.dns.query(f"_25._tcp.{host}", wire.TLSA)
        _, records = follow(lookup, wire.TLSA)
        texts = [f"{u} {s} {m} {d}" for (u, s, m, d) in (r.data for r in records)]
        self.emit_host("crawl_tlsa", {"mx_host": host, "observed_at": _now(), "rcode": lookup.status,
                                      "ad": lookup.ad if lookup.response else None, "records": texts})
        return bool(texts)

    async def _smtp_all(self, hosts: list[str], turn: Turn) -> list[Any]:
        return await asyncio.gather(*(self._smtp.get(h, lambda h=h: self._smtp_probe(h, turn)) for h in hosts))

    async def _smtp_probe(self, host: str, turn: Turn) -> str:
        a = await self.dns.query(host, wire.A)
        _, records = follow(a, wire.A)
        looked_up = f"A {a.status}"
        if not records:
            aaaa = await self.dns.query(host, wire.AAAA)
            _, records = follow(aaaa, wire.AAAA)
            looked_up += f", AAAA {aaaa.status}"
        address = records[0].data if records else None
        port = self.config.smtp_port
        if address is None:
            self.probes += 1
            probe = SmtpProbe(host, None, port, "tcp_error", detail=f"MX host has no address ({looked_up})")
        else:
            def attempt() -> Awaitable[SmtpProbe]:
                self.probes += 1
                return probe_mx(host, address, port=port, context=self.context, timeout=self.config.timeout)
            # room for the probe and its second (certificate-reading) session
            outcome = await self.smtp_gate.run(address, port, turn, 2 * self.config.timeout, attempt,
                                               _probe_unanswered)
            probe = (SmtpProbe(host, address, port, outcome.code, detail=outcome.detail)
                     if isinstance(outcome, Denied) else outcome)
        cert = probe.cert or {}
        self.emit_host("crawl_smtp", {
            "mx_host": host, "observed_at": _now(), "a_rcode": a.status, "address": address,
            "port": probe.port, "outcome": probe.outcome, "banner": probe.banner or None,
            "ehlo": list(probe.ehlo), "starttls_offered": probe.starttls_offered,
            "tls_version": probe.tls_version, "tls_subclass": probe.tls_subclass,
            "verify_code": probe.verify_code, "verify_error": probe.verify_error,
            "cert_subject": cert.get("subject"), "cert_issuer": cert.get("issuer"),
            "cert_sans": cert.get("sans") or [], "cert_not_before": cert.get("not_before"),
            "cert_not_after": cert.get("not_after"), "detail": probe.detail or None,
            "t_connect_ms": _ms(probe.t_connect),
            "t_total_ms": probe.t_total * 1000,
        })
        return probe.outcome


def _fetch_unanswered(r: FetchResult) -> str | None:
    """Why a fetch counts against its address's circuit, or None: only a timeout before
    the HTTP exchange (connect, TLS) says the address stopped answering; an HTTP stall
    after a handshake may be one site's, not the shared server's."""
    return f"timeout during {r.phase}" if r.outcome == "timeout" and r.phase in ("connect", "tls") else None


def _probe_unanswered(p: SmtpProbe) -> str | None:
    return p.detail if p.timed_out else None


def _ms(value: float | None) -> float | None:
    return value * 1000 if value is not None else None


def _fetch_columns(r: FetchResult) -> dict[str, Any]:
    return {
        "address": r.address, "port": r.port, "outcome": r.outcome, "phase": r.phase,
        "tls_subclass": r.tls_subclass, "tls_verify_code": r.tls_verify_code,
        "tls_version": r.tls_version, "http_status": r.status, "http_reason": r.reason,
        "http_headers": json.dumps([list(h) for h in r.headers]) if r.headers else None,
        "content_type": r.content_type, "body": r.body if r.status is not None else None,
        "body_bytes": len(r.body) if r.status is not None else None,
        "body_truncated": r.body_truncated, "detail": r.detail or None,
        "t_connect_ms": _ms(r.t_connect), "t_tls_ms": _ms(r.t_tls),
        "t_first_byte_ms": _ms(r.t_first_byte), "t_total_ms": r.t_total * 1000,
        "fetch_findings": json.dumps([{"code": c, "severity": s, "message": m} for c, s, m in r.findings]),
    }
