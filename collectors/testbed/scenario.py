"""The scenario model: which domains a testbed world serves and how each one behaves.

A scenario is plain data (frozen dataclasses) that round-trips through YAML. It says
what the DNS, HTTPS and SMTP servers of a world serve; it never says how they are run
(that is :mod:`collectors.testbed.world`). Each domain may carry the verdict a correct
crawler must reach for it (``expected``, in the vocabulary of the verdict columns in docs/testbed.md, the shared
contract with the crawler).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

# "wildcard": a valid certificate for *.<parent> only (RFC 6125 6.4.3), which verifies for <name>.
CERT_KINDS = ("valid", "name_mismatch", "self_signed", "expired", "unknown_ca", "none", "wildcard")
HTTP_BEHAVIOURS = (
    "ok",            # 200 with the body, Content-Type text/plain
    "status",        # the given HTTP status (404, 500, ...)
    "redirect",      # a 3xx to ``location`` (RFC 8461 3.3: never followed)
    "content_type",  # 200 with the body under another Content-Type
    "big_static",    # 200 with a body of ``size`` bytes and a Content-Length
    "big_chunked",   # 200 with a body of ``size`` bytes, chunked, no Content-Length
    "stall",         # TCP accepted, nothing ever answered (not even the TLS handshake)
    "stall_http",    # TLS done, the HTTP request never answered
    "refused",       # the address resolves, nothing listens (TCP RST)
    "unresolvable",  # no address record for the policy host
)
SMTP_BEHAVIOURS = ("starttls", "no_starttls", "refused")
DNSSEC_KINDS = ("unsigned", "signed", "bogus")

# The verdict columns of the shared contract (docs in verdicts.md / docs/testbed.md).
EXPECTED_COLUMNS = (
    "mx_status", "sts_record", "sts_id", "policy_fetch", "policy_mode", "policy_max_age",
    "mx_policy_match", "tlsrpt_record", "dnssec", "tlsa", "mx_starttls", "misconfigured",
    "delivery_risk", "misconfig_classes", "mismatch_subclass", "policy_tls_subclass",
    "policy_host_cname", "sts_cname",
)
DEFAULT_BIG_SIZE = 100_000  # bytes; over the 64 KiB policy cap of RFC 8461 3.3


class ScenarioError(ValueError):
    """A scenario that cannot be served (bad value, conflicting records)."""


@dataclass(frozen=True)
class MxHost:
    """A mail exchanger: its address and how its SMTP listener behaves."""

    name: str
    address: str | None = None  # None: assigned from the address plan
    smtp: str = "starttls"
    certificate: str = "valid"
    tlsa: tuple[str, ...] = ()  # TLSA rdata ("3 1 1 <hex>"), or "auto" for the served key


@dataclass(frozen=True)
class MxRecord:
    """One MX record of a domain: the exchange and its preference (RFC 5321 5.1)."""

    host: str
    preference: int = 10


@dataclass(frozen=True)
class PolicyHost:
    """``mta-sts.<domain>``: where it points and what its HTTPS server does (RFC 8461 3.3)."""

    http: str = "ok"
    certificate: str = "valid"
    cname: str | None = None      # a CNAME to a (shared, third-party) host
    address: str | None = None    # an explicit address; None: from the address plan
    status: int | None = None     # http=status / redirect
    location: str | None = None   # http=redirect
    content_type: str | None = None  # http=content_type
    size: int | None = None       # http=big_static / big_chunked
    body: str | None = None       # the exact policy text served


@dataclass(frozen=True)
class Domain:
    """One domain of a scenario and the verdict a correct crawler reaches for it."""

    name: str
    case: str = ""                # the catalogue case (population domains name their template)
    description: str = ""
    refs: tuple[str, ...] = ()    # RFC sections / study classes the case exercises
    exists: bool = True           # False: no records at all (NXDOMAIN)
    mx: tuple[MxRecord, ...] = ()
    null_mx: bool = False         # RFC 7505 "MX 0 ."
    sts: tuple[tuple[str, ...], ...] = ()      # _mta-sts TXT records, each a tuple of strings
    sts_cname: str | None = None               # _mta-sts CNAME (RFC 8461 8.2)
    tlsrpt: tuple[tuple[str, ...], ...] = ()   # _smtp._tls TXT records (RFC 8460 3)
    tlsrpt_cname: str | None = None
    policy_host: PolicyHost | None = None
    dnssec: str = "unsigned"
    records: tuple[str, ...] = ()  # extra zone-file lines (absolute owner names)
    expected: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """Domains plus the shared hosts (provider MX hosts, third-party policy hosts) they use."""

    name: str
    domains: tuple[Domain, ...]
    mx_hosts: tuple[MxHost, ...] = ()
    https_hosts: tuple[str, ...] = ()   # shared policy hosts: an A record to the web server
    records: tuple[str, ...] = ()       # extra zone-file lines
    description: str = ""

    # -- access -------------------------------------------------------------------------
    @property
    def expected(self) -> dict[str, dict[str, Any]]:
        """{domain: {column: value}}: the verdicts a crawl with ``--probe-smtp`` must reach."""
        return {d.name: dict(d.expected) for d in self.domains if d.expected}

    @property
    def expected_unprobed(self) -> dict[str, dict[str, Any]]:
        """The verdicts of a crawl without ``--probe-smtp`` (no MX certificate facts)."""
        return {name: unprobed(exp) for name, exp in self.expected.items()}

    def domain(self, name: str) -> Domain:
        for d in self.domains:
            if d.name == name:
                return d
        raise KeyError(name)

    def by_case(self, case: str) -> Domain:
        for d in self.domains:
            if d.case == case:
                return d
        raise KeyError(case)

    def mx_host(self, name: str) -> MxHost | None:
        for h in self.mx_hosts:
            if h.name == name:
                return h
        return None

    def fingerprint(self) -> str:
        """A stable hash of the scenario's content (to tell whether a running world serves it)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()  # dataclass reprs are stable

    # -- YAML ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        with open(path, encoding="utf-8") as fh:
            data = read_yaml(fh)
        return from_dict(data, default_name=Path(path).stem)

    def dump(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            yaml.dump(to_dict(self), fh, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_yaml(source: Any) -> Any:
    """YAML text or a stream, read safely (the C loader when PyYAML has one)."""
    return yaml.load(source, Loader=_Loader)


def unprobed(expected: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a probed verdict into the one a crawl without ``--probe-smtp`` reaches."""
    out = dict(expected)
    if "mx_starttls" in out and out["mx_starttls"] != "n/a":
        out["mx_starttls"] = "not_probed"
    if "misconfig_classes" in out:
        classes = [c for c in str(out["misconfig_classes"]).split(";") if c and c != "mx_cert_invalid"]
        out["misconfig_classes"] = ";".join(classes)
        if "misconfigured" in out:
            out["misconfigured"] = bool(classes)
        if "delivery_risk" in out:
            out["delivery_risk"] = out.get("policy_mode") == "enforce" and "mx_not_covered" in classes
    return out


# -- (de)serialisation --------------------------------------------------------------------

def _txt(records: Any, where: str) -> tuple[tuple[str, ...], ...]:
    if records is None:
        return ()
    if not isinstance(records, list):
        raise ScenarioError(f"{where}: expected a list of TXT records")
    out = []
    for rec in records:
        strings = (rec,) if isinstance(rec, str) else tuple(rec)
        for s in strings:
            if not isinstance(s, str):
                raise ScenarioError(f"{where}: TXT strings must be text, got {s!r}")
            if len(s.encode()) > 255:
                raise ScenarioError(f"{where}: a TXT string is over 255 bytes; split it into several strings")
        out.append(strings)
    return tuple(out)


def _pick(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    return dict(data)


def _domain_from_dict(data: Mapping[str, Any], hosts: dict[str, MxHost]) -> Domain:
    if "name" not in data:
        raise ScenarioError(f"a domain has no name: {data!r}")
    name = str(data["name"]).lower().rstrip(".")
    where = f"domain {name}"
    raw = _pick(Domain, data, where)
    mx: list[MxRecord] = []
    for entry in raw.get("mx") or ():
        if isinstance(entry, str):
            entry = {"host": entry}
        entry = dict(entry)
        host = str(entry.pop("host")).lower().rstrip(".")
        pref = int(entry.pop("preference", 10))
        # An inline entry defines its host (defaults: STARTTLS, valid certificate) unless a
        # bare entry names a host defined elsewhere (a shared provider host).
        if entry or host not in hosts:
            host_def = MxHost(name=host, **{k: (tuple(v) if k == "tlsa" else v) for k, v in entry.items()})
            _add_host(hosts, host_def, where)
        mx.append(MxRecord(host=host, preference=pref))
    ph = raw.get("policy_host")
    policy_host = PolicyHost(**_pick(PolicyHost, ph, f"{where} policy_host")) if ph is not None else None
    if policy_host and policy_host.cname:
        policy_host = replace(policy_host, cname=policy_host.cname.lower().rstrip("."))
    expected = dict(raw.get("expected") or {})
    bad = set(expected) - set(EXPECTED_COLUMNS)
    if bad:
        raise ScenarioError(f"{where}: unknown expected columns {sorted(bad)}")
    return Domain(
        name=name,
        case=str(raw.get("case") or ""),
        description=str(raw.get("description") or ""),
        refs=tuple(raw.get("refs") or ()),
        exists=bool(raw.get("exists", True)),
        mx=tuple(mx),
        null_mx=bool(raw.get("null_mx", False)),
        sts=_txt(raw.get("sts"), f"{where} sts"),
        sts_cname=(raw.get("sts_cname") or None) and str(raw["sts_cname"]).lower().rstrip("."),
        tlsrpt=_txt(raw.get("tlsrpt"), f"{where} tlsrpt"),
        tlsrpt_cname=(raw.get("tlsrpt_cname") or None) and str(raw["tlsrpt_cname"]).lower().rstrip("."),
        policy_host=policy_host,
        dnssec=str(raw.get("dnssec", "unsigned")),
        records=tuple(raw.get("records") or ()),
        expected=expected,
    )


def _add_host(hosts: dict[str, MxHost], host: MxHost, where: str) -> None:
    old = hosts.get(host.name)
    if old is not None and old != host:
        raise ScenarioError(f"{where}: MX host {host.name} is defined twice, differently")
    hosts[host.name] = host


def from_dict(data: Mapping[str, Any], default_name: str = "scenario") -> Scenario:
    """Build and validate a scenario from its YAML mapping."""
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario is a mapping with a 'domains' list")
    hosts: dict[str, MxHost] = {}
    for h in data.get("mx_hosts") or ():
        h = dict(h)
        h["name"] = str(h["name"]).lower().rstrip(".")
        if "tlsa" in h:
            h["tlsa"] = tuple(h["tlsa"])
        _add_host(hosts, MxHost(**_pick(MxHost, h, f"mx host {h['name']}")), "mx_hosts")
    domains = tuple(_domain_from_dict(d, hosts) for d in data.get("domains") or ())
    scenario = Scenario(
        name=str(data.get("name") or default_name),
        description=str(data.get("description") or ""),
        domains=domains,
        mx_hosts=tuple(sorted(hosts.values(), key=lambda h: h.name)),
        https_hosts=tuple(str(h).lower().rstrip(".") for h in data.get("https_hosts") or ()),
        records=tuple(data.get("records") or ()),
    )
    validate(scenario)
    return scenario


def _clean(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_clean(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def _dataclass_dict(obj: Any, defaults: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value == getattr(defaults, f.name, object()) and f.name not in ("name", "host"):
            continue
        out[f.name] = _clean(value)
    return out


def to_dict(scenario: Scenario) -> dict[str, Any]:
    """The YAML mapping of a scenario (defaults left out, so files stay short)."""
    domains = []
    for d in scenario.domains:
        item: dict[str, Any] = {"name": d.name}
        for f in fields(Domain):
            if f.name in ("name", "mx", "policy_host", "expected"):
                continue
            value = getattr(d, f.name)
            default = f.default if f.default is not field else None
            if value != default and value not in ((), None, ""):
                item[f.name] = _clean(value) if not isinstance(value, tuple) or f.name not in ("sts", "tlsrpt") \
                    else [list(r) for r in value]
        if d.mx:
            item["mx"] = [{"host": m.host, "preference": m.preference} for m in d.mx]
        if d.policy_host is not None:
            item["policy_host"] = {k: v for k, v in _dataclass_dict(d.policy_host, PolicyHost()).items()}
        if d.expected:
            item["expected"] = dict(d.expected)
        domains.append(item)
    out: dict[str, Any] = {"name": scenario.name}
    if scenario.description:
        out["description"] = scenario.description
    if scenario.mx_hosts:
        out["mx_hosts"] = [_dataclass_dict(h, MxHost(name="")) for h in scenario.mx_hosts]
    if scenario.https_hosts:
        out["https_hosts"] = list(scenario.https_hosts)
    if scenario.records:
        out["records"] = list(scenario.records)
    out["domains"] = domains
    return out


# -- validation ---------------------------------------------------------------------------

def _check_address(addr: str | None, where: str) -> None:
    if addr is None:
        return
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {addr!r} is not an IP address") from exc
    if not ip.is_loopback:  # 127.0.0.0/8, or ::1 for an IPv6-only host (an AAAA record)
        raise ScenarioError(f"{where}: {addr} is outside 127.0.0.0/8 and ::1 (the testbed serves only loopback)")


def validate(scenario: Scenario) -> None:
    """Raise ScenarioError for anything the servers could not serve as written."""
    seen: set[str] = set()
    for d in scenario.domains:
        where = f"domain {d.name}"
        if d.name in seen:
            raise ScenarioError(f"{where}: listed twice")
        seen.add(d.name)
        if "." not in d.name:
            raise ScenarioError(f"{where}: must have at least two labels (e.g. name.test)")
        if d.dnssec not in DNSSEC_KINDS:
            raise ScenarioError(f"{where}: dnssec must be one of {DNSSEC_KINDS}")
        if d.null_mx and d.mx:
            raise ScenarioError(f"{where}: null_mx and mx records together")
        if d.sts and d.sts_cname:
            raise ScenarioError(f"{where}: _mta-sts cannot have both TXT records and a CNAME")
        if d.tlsrpt and d.tlsrpt_cname:
            raise ScenarioError(f"{where}: _smtp._tls cannot have both TXT records and a CNAME")
        if not d.exists and (d.mx or d.null_mx or d.sts or d.sts_cname or d.tlsrpt or d.policy_host):
            raise ScenarioError(f"{where}: exists: false but records given")
        ph = d.policy_host
        if ph is not None:
            if ph.http not in HTTP_BEHAVIOURS:
                raise ScenarioError(f"{where}: policy_host.http must be one of {HTTP_BEHAVIOURS}")
            if ph.certificate not in CERT_KINDS:
                raise ScenarioError(f"{where}: policy_host.certificate must be one of {CERT_KINDS}")
            if ph.http == "status" and not (ph.status and 100 <= ph.status <= 599):
                raise ScenarioError(f"{where}: http status needs a status code")
            if ph.http == "redirect" and not ph.location:
                raise ScenarioError(f"{where}: http redirect needs a location")
            if ph.http == "content_type" and not ph.content_type:
                raise ScenarioError(f"{where}: http content_type needs a content_type")
            if ph.http in ("ok", "content_type") and ph.body is None:
                raise ScenarioError(f"{where}: http {ph.http} needs a body")
            if ph.cname and ph.address:
                raise ScenarioError(f"{where}: policy_host has both a CNAME and an address")
            _check_address(ph.address, where)
    for h in scenario.mx_hosts:
        where = f"MX host {h.name}"
        if h.smtp not in SMTP_BEHAVIOURS:
            raise ScenarioError(f"{where}: smtp must be one of {SMTP_BEHAVIOURS}")
        if h.certificate not in CERT_KINDS:
            raise ScenarioError(f"{where}: certificate must be one of {CERT_KINDS}")
        _check_address(h.address, where)


def iter_policy_domains(scenario: Scenario) -> Iterable[Domain]:
    return (d for d in scenario.domains if d.policy_host is not None)
