"""Self-check: plain clients (dnspython, ssl + http.client, smtplib) confirm that a running
world serves each domain exactly as its scenario says.

``check_domain`` returns a list of problems (empty when the servers behave); it must run
where the world is (``world.call(check_domain, ...)`` for a namespace world). It tests the
servers, not the crawler: it knows the scenario and asks each server directly.
"""

from __future__ import annotations

import http.client
import random
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from collectors.testbed.plan import Plan, make_plan
from collectors.testbed.scenario import DEFAULT_BIG_SIZE, Domain, MxHost, Scenario
from collectors.testbed.world import World

TIMEOUT = 3.0
STALL_WAIT = 1.0
# OpenSSL verify codes per certificate kind (X509_V_ERR_*).
VERIFY_CODES = {"name_mismatch": 62, "self_signed": 18, "expired": 10, "unknown_ca": 20}


@dataclass
class Checker:
    world: World
    scenario: Scenario
    plan: Plan

    @classmethod
    def for_world(cls, world: World, scenario: Scenario) -> "Checker":
        return cls(world, scenario, make_plan(scenario))

    # -- DNS ------------------------------------------------------------------------------
    def query(self, name: str, rdtype: str, cd: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        if cd:
            q.flags |= dns.flags.CD
        ip, port = self.world.resolver
        r = dns.query.udp(q, ip, port=port, timeout=TIMEOUT)
        if r.flags & dns.flags.TC:
            r = dns.query.tcp(q, ip, port=port, timeout=TIMEOUT)
        return r

    @staticmethod
    def rrs(r: dns.message.Message, rdtype: str) -> list:
        t = dns.rdatatype.from_text(rdtype)
        return [rd for rrset in r.answer if rrset.rdtype == t for rd in rrset]

    def address_of(self, name: str) -> str | None:
        """The first A address of ``name``, else its first AAAA (IPv6-only hosts)."""
        for rdtype in ("A", "AAAA"):
            found = self.rrs(self.query(name, rdtype), rdtype)
            if found:
                return found[0].address
        return None

    # -- per domain --------------------------------------------------------------------
    def check(self, d: Domain) -> list[str]:
        problems: list[str] = []
        try:
            problems += self.check_dns(d)
            if d.dnssec != "bogus":
                if d.policy_host is not None:
                    problems += self.check_policy_host(d)
                for m in d.mx:
                    host = self.scenario.mx_host(m.host)
                    if host is not None:
                        problems += self.check_mx(host)
        except (OSError, dns.exception.DNSException) as exc:
            problems.append(f"{d.name}: {type(exc).__name__}: {exc}")
        return problems

    def check_dns(self, d: Domain) -> list[str]:
        p: list[str] = []
        r = self.query(d.name, "MX")
        if d.dnssec == "bogus":
            if r.rcode() != dns.rcode.SERVFAIL:
                p.append(f"{d.name}: bogus zone answered {dns.rcode.to_text(r.rcode())}, not SERVFAIL")
            r = self.query(d.name, "MX", cd=True)  # checking disabled: the data is there
            if r.rcode() != dns.rcode.NOERROR or not self.rrs(r, "MX"):
                p.append(f"{d.name}: bogus zone has no MX even with CD")
            return p
        ad = bool(r.flags & dns.flags.AD)
        if ad != (d.dnssec == "signed"):
            p.append(f"{d.name}: AD bit {ad} for a {d.dnssec} zone")
        if not d.exists:
            if r.rcode() != dns.rcode.NXDOMAIN:
                p.append(f"{d.name}: expected NXDOMAIN, got {dns.rcode.to_text(r.rcode())}")
            return p
        got = sorted((mx.preference, mx.exchange.to_text().lower()) for mx in self.rrs(r, "MX"))
        want = [(0, ".")] if d.null_mx else sorted((m.preference, m.host + ".") for m in d.mx)
        if got != want:
            p.append(f"{d.name}: MX {got} != {want}")
        p += self._check_txt(d, f"_mta-sts.{d.name}", d.sts, d.sts_cname)
        p += self._check_txt(d, f"_smtp._tls.{d.name}", d.tlsrpt, d.tlsrpt_cname)
        ph = d.policy_host
        if ph is not None:
            r = self.query(f"mta-sts.{d.name}", "A")
            cnames = [c.target.to_text().rstrip(".") for c in self.rrs(r, "CNAME")]
            if ph.cname and cnames[:1] != [ph.cname]:
                p.append(f"{d.name}: policy host CNAME {cnames} != {ph.cname}")
            want_a = None if ph.http == "unresolvable" else (
                self.plan.policy_address(ph.http, ph.address) if not ph.cname else "any")
            addrs = [a.address for a in self.rrs(r, "A")]
            if want_a is not None and ":" in want_a:  # IPv6-only: an AAAA record, no A
                addrs = addrs + [a.address for a in self.rrs(self.query(f"mta-sts.{d.name}", "AAAA"), "AAAA")]
            if want_a is None and addrs:
                p.append(f"{d.name}: unresolvable policy host resolves to {addrs}")
            if want_a not in (None, "any") and addrs != [want_a]:
                p.append(f"{d.name}: policy host at {addrs}, not {want_a}")
            if want_a == "any" and not addrs:
                p.append(f"{d.name}: policy host CNAME does not resolve")
        for m in d.mx:
            host = self.scenario.mx_host(m.host)
            if host is None or not host.tlsa:
                continue
            r = self.query(f"_25._tcp.{host.name}", "TLSA")
            if len(self.rrs(r, "TLSA")) != len(host.tlsa):
                p.append(f"{d.name}: TLSA for {host.name}: {len(self.rrs(r, 'TLSA'))} records, want {len(host.tlsa)}")
        return p

    def _check_txt(self, d: Domain, name: str, records: tuple, cname: str | None) -> list[str]:
        r = self.query(name, "TXT")
        p: list[str] = []
        if cname:
            targets = [c.target.to_text().rstrip(".") for c in self.rrs(r, "CNAME")]
            if targets[:1] != [cname]:
                p.append(f"{d.name}: {name} CNAME {targets} != {cname}")
            return p
        got = sorted(tuple(s.decode() for s in t.strings) for t in self.rrs(r, "TXT"))
        if got != sorted(records):
            p.append(f"{d.name}: {name} TXT {got} != {sorted(records)}")
        return p

    # -- HTTPS -----------------------------------------------------------------------------
    def _tls_context(self, verify: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.world.ca_bundle))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def check_policy_host(self, d: Domain) -> list[str]:
        ph = d.policy_host
        assert ph is not None
        host = f"mta-sts.{d.name}"
        if ph.http == "unresolvable":
            return []
        ip = self.address_of(host)
        if ip is None:
            return [f"{d.name}: {host} does not resolve"]
        port = self.world.https_port
        if ph.http == "refused":
            try:
                socket.create_connection((ip, port), timeout=TIMEOUT).close()
            except ConnectionRefusedError:
                return []
            return [f"{d.name}: {host} accepted a connection, should refuse"]
        if ph.http == "stall":
            with socket.create_connection((ip, port), timeout=TIMEOUT) as raw:
                ctx = self._tls_context(verify=False)
                raw.settimeout(STALL_WAIT)
                try:
                    ctx.wrap_socket(raw, server_hostname=host)
                except (socket.timeout, TimeoutError):
                    return []
            return [f"{d.name}: {host} completed a TLS handshake, should stall"]
        # The certificate, verified as a sender would (RFC 8461 3.3).
        p: list[str] = []
        try:
            with socket.create_connection((ip, port), timeout=TIMEOUT) as raw:
                with self._tls_context(verify=True).wrap_socket(raw, server_hostname=host):
                    verified = "valid"
        except ssl.SSLCertVerificationError as exc:
            verified = next((k for k, c in VERIFY_CODES.items() if c == exc.verify_code), f"code{exc.verify_code}")
        except ssl.SSLError:
            verified = "none"
        if verified != _verifies_as(ph.certificate):
            p.append(f"{d.name}: certificate verifies as {verified}, scenario says {ph.certificate}")
        if ph.certificate == "none":
            return p
        # The HTTP behaviour, certificate checks off.
        try:
            status, headers, body = self._get(ip, port, host, timeout=STALL_WAIT if ph.http == "stall_http" else TIMEOUT)
        except (socket.timeout, TimeoutError):
            if ph.http != "stall_http":
                p.append(f"{d.name}: HTTP timed out")
            return p
        if ph.http == "stall_http":
            return p + [f"{d.name}: stall_http answered {status}"]
        ctype = headers.get("content-type", "")
        if ph.http in ("ok", "content_type"):
            want_ct = "text/plain" if ph.http == "ok" else ph.content_type
            if status != 200 or body != (ph.body or "").encode() or ctype != want_ct:
                p.append(f"{d.name}: got {status} {ctype!r} {body[:40]!r}, want 200 {want_ct!r} and the body")
        elif ph.http == "status":
            if status != ph.status:
                p.append(f"{d.name}: status {status} != {ph.status}")
        elif ph.http == "redirect":
            if status != (ph.status or 301) or headers.get("location") != ph.location:
                p.append(f"{d.name}: redirect {status} {headers.get('location')!r}")
        elif ph.http in ("big_static", "big_chunked"):
            size = ph.size or DEFAULT_BIG_SIZE
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            if status != 200 or len(body) != size or chunked != (ph.http == "big_chunked"):
                p.append(f"{d.name}: big body {status} {len(body)} bytes chunked={chunked}")
            if ph.http == "big_static" and headers.get("content-length") != str(size):
                p.append(f"{d.name}: big_static Content-Length {headers.get('content-length')}")
        return p

    def _get(self, ip: str, port: int, host: str, timeout: float) -> tuple[int, dict[str, str], bytes]:
        raw = socket.create_connection((ip, port), timeout=TIMEOUT)
        tls = self._tls_context(verify=False).wrap_socket(raw, server_hostname=host)
        tls.settimeout(timeout)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = tls
        try:
            conn.request("GET", "/.well-known/mta-sts.txt", headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    # -- SMTP ------------------------------------------------------------------------------
    def check_mx(self, host: MxHost) -> list[str]:
        ip = self.plan.mx_addresses[host.name]
        port = self.world.smtp_port
        if host.smtp == "refused":
            try:
                socket.create_connection((ip, port), timeout=TIMEOUT).close()
            except ConnectionRefusedError:
                return []
            return [f"MX {host.name}: accepted a connection, should refuse"]
        p: list[str] = []
        with smtplib.SMTP(ip, port, local_hostname="selfcheck.testbed.test", timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            offers = smtp.has_extn("starttls")
            if offers != (host.smtp == "starttls"):
                return [f"MX {host.name}: STARTTLS offered={offers}, scenario says {host.smtp}"]
            if not offers:
                return []
            smtp._host = host.name  # SNI and name check against the MX name (RFC 8461 4.2)
            try:
                smtp.starttls(context=self._tls_context(verify=True))
                smtp.ehlo()
                verified = "valid"
            except ssl.SSLCertVerificationError as exc:
                verified = next((k for k, c in VERIFY_CODES.items() if c == exc.verify_code), f"code{exc.verify_code}")
                return [] if verified == host.certificate else \
                    [f"MX {host.name}: certificate verifies as {verified}, scenario says {host.certificate}"]
            except (ssl.SSLError, smtplib.SMTPException):
                verified = "none"
                return [] if host.certificate == "none" else [f"MX {host.name}: TLS failed"]
            if verified != _verifies_as(host.certificate):
                p.append(f"MX {host.name}: certificate verifies as valid, scenario says {host.certificate}")
            smtp.quit()
        return p


def _verifies_as(kind: str) -> str:
    """How a certificate of ``kind`` verifies for its host name: a wildcard one is valid."""
    return "valid" if kind == "wildcard" else kind


def check_world(world: World, scenario: Scenario, domains: Iterable[Domain] | None = None) -> dict[str, list[str]]:
    """{domain: problems} for the given domains (default: all), run where the world is."""
    checker = Checker.for_world(world, scenario)
    todo = list(domains if domains is not None else scenario.domains)
    return world.call(lambda: {d.name: checker.check(d) for d in todo})


def sample_domains(scenario: Scenario, k: int, seed: int = 0) -> list[Domain]:
    """One domain of every case plus a seeded random sample of k domains."""
    by_case: dict[str, Domain] = {}
    for d in scenario.domains:
        by_case.setdefault(d.case or d.name, d)
    rng = random.Random(seed)
    picked = {d.name: d for d in by_case.values()}
    for d in rng.sample(list(scenario.domains), min(k, len(scenario.domains))):
        picked.setdefault(d.name, d)
    return list(picked.values())
