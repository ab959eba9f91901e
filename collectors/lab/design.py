"""The audit lab's design: six receiving servers (A-F), the names and addresses they get,
and the sender profiles. Pure data; every other module of the lab reads it from here.

The design is the published one (Alexander 2024; ``../shared/reference/README.md``):
test addresses are ``<uuid>@<label>.audit.<base>``, one label per server, and every
lab domain except F's publishes an enforce-mode MTA-STS policy (RFC 8461 section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BASE_DOMAIN = "lab.test"  # RFC 2606 reserves .test for exactly this


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One receiving server: what makes it a test case."""

    label: str              # a-f: the first label of its lab domain
    description: str
    tls: str                # "valid" | "none" | "wrong_name" | "required"
    ipv6_only: bool         # the MX host has an AAAA record and no A record
    sts_policy: bool        # the domain publishes _mta-sts TXT and an enforce policy
    expect_enforcing_delivery: bool  # an RFC 8461 sender delivers (RFC 8461 section 5)


SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec("a", "valid certificate", "valid", False, True, True),
    ServerSpec("b", "no TLS", "none", False, True, False),
    ServerSpec("c", "IPv6 only, valid certificate", "valid", True, True, True),
    ServerSpec("d", "untrusted certificate with the wrong name", "wrong_name", False, True, False),
    ServerSpec("e", "TLS required, valid certificate", "required", False, True, True),
    ServerSpec("f", "no TLS and no MTA-STS record (control)", "none", False, False, True),
)

SERVER_LABELS = tuple(s.label for s in SERVERS)


@dataclass(frozen=True, slots=True)
class LabNames:
    """Every DNS name of one lab under a base domain (``lab.test`` locally, your own
    domain on real hosts)."""

    base: str = DEFAULT_BASE_DOMAIN

    @property
    def zone(self) -> str:
        """The zone that holds every lab record: ``audit.<base>``."""
        return f"audit.{self.base}"

    def domain(self, label: str) -> str:
        """The lab domain of a server: test addresses are ``<uuid>@<this>``."""
        return f"{label}.{self.zone}"

    def mx_host(self, label: str) -> str:
        return f"mx.{self.domain(label)}"

    def policy_host(self, label: str) -> str:
        """RFC 8461 section 3.3: the policy is at ``https://mta-sts.<domain>/.well-known/mta-sts.txt``."""
        return f"mta-sts.{self.domain(label)}"

    @property
    def tlsrpt_host(self) -> str:
        return f"tlsrpt.{self.zone}"

    @property
    def tlsrpt_uri(self) -> str:
        """The https ``rua`` of every lab domain's TLS-RPT record (RFC 8460 section 3)."""
        return f"https://{self.tlsrpt_host}/v1/report"

    @property
    def nameserver_host(self) -> str:
        return f"ns.{self.zone}"


@dataclass(frozen=True, slots=True)
class LocalAddresses:
    """Where each piece listens in the local lab's network namespace. IPv4 addresses
    are added to ``lo`` inside the namespace (127.77.0.0/16, away from the testbed's);
    server C listens on ``::1`` only; senders get their own ULA source addresses."""

    receivers_v4: dict[str, str] = field(default_factory=lambda: {
        s.label: f"127.77.1.{i}" for i, s in enumerate(SERVERS, start=1) if not s.ipv6_only})
    receivers_v6: dict[str, str] = field(default_factory=lambda: {
        s.label: "::1" for s in SERVERS if s.ipv6_only})
    policy_server: str = "127.77.3.1"
    tlsrpt_server: str = "127.77.3.2"
    resolver_daemon: str = "127.0.0.1"   # mta-sts-daemons' socketmaps (each profile its own port)

    def receiver(self, label: str) -> str:
        return self.receivers_v4.get(label) or self.receivers_v6[label]

    def all_v4(self) -> list[str]:
        senders = [p.address for p in BUILTIN_PROFILES]
        return [*self.receivers_v4.values(), *senders, self.policy_server, self.tlsrpt_server]

    def all_v6(self) -> list[str]:
        return [p.address6 for p in BUILTIN_PROFILES]


MTAS = ("postfix", "exim")
DANE_MODES = ("none", "opportunistic", "required")
NOTICE_STYLES = ("delay+failure", "failure-only", "quick+updates")


@dataclass(frozen=True, slots=True)
class SenderProfile:
    """A built-in sending MTA: a Postfix or Exim instance in the namespace, from Debian's
    packages, configured (never emulated) for one TLS policy and one notice style."""

    name: str               # the provider name in the ledger and in provider_behaviour
    description: str
    enforces_mta_sts: bool  # runs its own mta-sts-daemon and looks policies up through it
    address: str            # IPv4 it listens on (submission) and sends from
    address6: str           # IPv6 (ULA) it sends from
    mta: str = "postfix"    # one of MTAS
    # DANE (RFC 7672): "opportunistic" uses TLSA records where DNSSEC-signed ones exist
    # (Postfix smtp_tls_security_level = dane, Exim's default hosts_try_dane = *);
    # "required" refuses a host without usable TLSA records (Exim hosts_require_dane = *).
    dane: str = "none"
    notices: str = "delay+failure"  # one of NOTICE_STYLES (see notice_settings)
    prime_policies: bool = False    # `send` fetches every policy before the first message
    resolver_port: int = 0          # its mta-sts-daemon's socketmap port (enforces_mta_sts)

    @property
    def account(self) -> str:
        """Local part of the sending account (its Maildir receives the notices)."""
        return "tester"

    @property
    def submit_port(self) -> int:
        """Where it takes submissions: Exim, started as root with its own configuration
        file, gives up root (as its documentation says) and cannot bind port 25."""
        return 2525 if self.mta == "exim" else 25

    @property
    def resolver_uid(self) -> int:
        """The uid its mta-sts-daemon runs as (no account needed): one per daemon, so
        that policy routing sends each daemon's fetches from its profile's address."""
        return 64661 + (self.resolver_port - 8461)

    @property
    def postfix_policy(self) -> str:
        """The template of its TLS policy: ``postfix/senders/<this>.cf``."""
        if self.enforces_mta_sts:
            return "mta-sts"
        return "dane" if self.dane != "none" else "opportunistic"

    def sender_domain(self, names: LabNames) -> str:
        return f"{self.name}.senders.{names.base}"

    def from_address(self, names: LabNames) -> str:
        return f"{self.account}@{self.sender_domain(names)}"

    def mta_host(self, names: LabNames) -> str:
        return f"mta.{self.sender_domain(names)}"

    def notice_settings(self, timers: "QueueTimers") -> dict[str, str]:
        """The MTA's own notice and queue timers, by its parameter names (stored as the
        run's provenance, printed beside every timing comparison).

        delay+failure: one delay notice, then the failure notice (Postfix
        ``delay_warning_time``); failure-only: no delay notice (``delay_warning_time = 0``,
        Postfix's default); quick+updates: a quick delay notice and repeated updates
        (Exim's ``delay_warning`` list, whose last time repeats), then the failure notice."""
        if self.mta == "exim":
            first = timers.queue_run_delay if self.notices == "quick+updates" else timers.delay_warning_time
            warning = "0" if self.notices == "failure-only" else f"{first}:{timers.delay_warning_time}"
            return {
                "delay_warning": warning,
                "retry": f"F,{timers.maximal_queue_lifetime},{timers.minimal_backoff_time}",
                "queue_run_interval": timers.queue_run_delay,
            }
        return {
            "delay_warning_time": "0" if self.notices == "failure-only" else timers.delay_warning_time,
            "maximal_queue_lifetime": timers.maximal_queue_lifetime,
            "bounce_queue_lifetime": timers.maximal_queue_lifetime,
            "queue_run_delay": timers.queue_run_delay,
            "minimal_backoff_time": timers.minimal_backoff_time,
            "maximal_backoff_time": timers.maximal_backoff_time,
        }


BUILTIN_PROFILES: tuple[SenderProfile, ...] = (
    SenderProfile("postfix-mta-sts", "Postfix with postfix-mta-sts-resolver (enforcing MTA-STS), "
                  "policy cache cold: the first message to a domain triggers its fetch",
                  True, "127.77.2.1", "fd00:6c61:6200::2:1", resolver_port=8461),
    SenderProfile("postfix-opportunistic", "Postfix with STARTTLS when offered, no MTA-STS",
                  False, "127.77.2.2", "fd00:6c61:6200::2:2"),
    SenderProfile("postfix-mta-sts-primed", "Postfix with postfix-mta-sts-resolver (enforcing MTA-STS), "
                  "every policy fetched before the first message",
                  True, "127.77.2.3", "fd00:6c61:6200::2:3", prime_policies=True, resolver_port=8462),
    SenderProfile("postfix-dane", "Postfix with smtp_tls_security_level = dane (RFC 7672), no MTA-STS; "
                  "failure notice only", False, "127.77.2.4", "fd00:6c61:6200::2:4",
                  dane="opportunistic", notices="failure-only"),
    SenderProfile("exim", "Exim (exim4-daemon-heavy) as configured by default: STARTTLS when offered, "
                  "DANE where TLSA records exist (hosts_try_dane = *), no MTA-STS; a quick delay "
                  "notice and updates", False, "127.77.2.5", "fd00:6c61:6200::2:5",
                  mta="exim", dane="opportunistic", notices="quick+updates"),
    SenderProfile("exim-dane-required", "Exim with hosts_require_dane = *: delivers only over "
                  "DANE-verified TLS, no MTA-STS", False, "127.77.2.6", "fd00:6c61:6200::2:6",
                  mta="exim", dane="required", notices="quick+updates"),
)

# The profiles `mtasts lab up` starts unless told otherwise (the two of the first lab).
DEFAULT_PROFILES = ("postfix-mta-sts", "postfix-opportunistic")


def builtin_profile(name: str) -> SenderProfile | None:
    return next((p for p in BUILTIN_PROFILES if p.name == name), None)


@dataclass(frozen=True, slots=True)
class QueueTimers:
    """The senders' short queue timers (Postfix time units). A refused message is
    retried every backoff, warned about after ``delay_warning_time`` and bounced after
    ``maximal_queue_lifetime`` (plus at most one queue run)."""

    delay_warning_time: str = "1m"
    maximal_queue_lifetime: str = "3m"
    queue_run_delay: str = "10s"
    minimal_backoff_time: str = "10s"
    maximal_backoff_time: str = "20s"

    def seconds(self, name: str) -> int:
        return postfix_seconds(getattr(self, name))


def postfix_seconds(value: str) -> int:
    """``"3m"`` -> 180 (Postfix time units: s, m, h, d, w; bare numbers are the
    parameter's default unit, taken here as seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = value.strip()
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)
