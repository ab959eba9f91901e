"""Every configuration file of a lab on real hosts, rendered from the same templates as the
local lab (``lab/``), for the addresses and names of a deployment (docs/lab-deploy.md).

Pure: a :class:`DeployPlan` in, ``{relative path: text}`` out; ``mtasts lab render``
writes them. Nothing here touches a host: the operator installs the files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from collectors.lab import configs
from collectors.lab.configs import TlsFiles
from collectors.lab.design import SERVERS, LabNames, LocalAddresses

# RFC 8461 section 3.1: id = 1*32(ALPHA / DIGIT)
_POLICY_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """What differs from one deployment to another: the base domain, the servers' addresses
    (C: IPv6 only; the others IPv4), the policy server's address, and where files live."""

    base: str
    receivers_v4: dict[str, str]              # a, b, d, e, f -> IPv4
    receiver_c_v6: str
    policy_v4: str
    tlsrpt_v4: str | None = None               # default: the policy server's address
    nameserver_v4: str | None = None           # only when you serve the zone yourself
    policy_id: str = field(default_factory=lambda: dt.date.today().strftime("%Y%m%d"))
    serial: int = field(default_factory=lambda: int(dt.date.today().strftime("%Y%m%d01")))
    acme_live: str = "/etc/letsencrypt/live"   # <acme_live>/<name>/fullchain.pem, privkey.pem
    mx_certificate: str = "lab-mx"             # the certificate for mx.a, mx.c, mx.e
    web_certificate: str = "lab-web"           # for every mta-sts.<x> host and tlsrpt (certbot --cert-name)
    recorder_user: str = "mtastslab"
    log_directory: str = "/var/log/mtasts-lab"
    data_directory: str = "/var/lib/mtasts-lab"
    policy_directory: str = "/srv/mtasts-lab/policies"
    # TLSA 3 1 1 data of the MX hosts' key (hex SHA-256 of its SubjectPublicKeyInfo), for
    # DANE senders; only in a DNSSEC-signed zone, and the key must survive renewals.
    tlsa_association: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with the plan, one line each (empty: it renders)."""
        out = []
        if not re.fullmatch(r"(?=.{1,200}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}", self.base):
            out.append(f"not a domain name: {self.base!r}")
        wanted = {s.label for s in SERVERS if not s.ipv6_only}
        if set(self.receivers_v4) != wanted:
            out.append(f"IPv4 addresses are needed for exactly {', '.join(sorted(wanted))}")
        for label, address in sorted(self.receivers_v4.items()):
            out += _address_problems(f"server {label.upper()}", address, 4)
        out += _address_problems("server C", self.receiver_c_v6, 6)
        out += _address_problems("the policy server", self.policy_v4, 4)
        if self.tlsrpt_v4:
            out += _address_problems("the TLS-RPT endpoint", self.tlsrpt_v4, 4)
        if self.nameserver_v4:
            out += _address_problems("the name server", self.nameserver_v4, 4)
        if self.tlsa_association is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.tlsa_association):
            out.append(f"TLSA association data must be 64 hex digits (SHA-256): {self.tlsa_association!r}")
        if not _POLICY_ID.match(self.policy_id):
            out.append(f"policy id must be 1-32 letters and digits (RFC 8461 section 3.1): {self.policy_id!r}")
        return out


def _address_problems(what: str, address: str, version: int) -> list[str]:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return [f"{what}: not an IP address: {address!r}"]
    if parsed.version != version:
        return [f"{what}: needs an IPv{version} address, not {address}"]
    return []


def render_deployment(plan: DeployPlan) -> dict[str, str]:
    """Every file, by path relative to an output folder:

    * ``dns/audit.<base>.zone``: the zone (or the records to create at a DNS provider);
    * ``postfix-<x>/main.cf``, ``master.cf``, ``aliases.regexp``: receivers A-F;
    * ``policy/<x>/mta-sts.txt`` (CRLF, RFC 8461 section 3.2) and ``policy/nginx.conf``.
    """
    problems = plan.problems()
    if problems:
        raise ValueError("; ".join(problems))
    names = LabNames(plan.base)
    addresses = LocalAddresses(
        receivers_v4=dict(plan.receivers_v4),
        receivers_v6={s.label: plan.receiver_c_v6 for s in SERVERS if s.ipv6_only},
        policy_server=plan.policy_v4, tlsrpt_server=plan.tlsrpt_v4 or plan.policy_v4)
    live = PurePosixPath(plan.acme_live)
    files: dict[str, str] = {
        f"dns/audit.{plan.base}.zone": configs.zone_text(names, addresses, plan.policy_id, plan.serial,
                                                         plan.nameserver_v4 or plan.policy_v4,
                                                         plan.tlsa_association),
    }
    for server in SERVERS:
        label = server.label
        instance = configs.syslog_name(label)
        paths = {
            "config_directory": f"/etc/{instance}",
            "queue_directory": f"/var/spool/{instance}",
            "data_directory": f"/var/lib/{instance}",
            "maillog_file": f"{plan.log_directory}/{instance}.log",
            "maillog_file_prefixes": plan.log_directory,
        }
        tls = None
        if server.tls == "wrong_name":
            # D: a certificate that is not trusted and names another host (docs/lab-deploy.md)
            tls = TlsFiles(PurePosixPath(f"/etc/{instance}/wrong-name.pem"),     # type: ignore[arg-type]
                           PurePosixPath(f"/etc/{instance}/wrong-name.key"))     # type: ignore[arg-type]
        elif server.tls != "none":
            cert = live / plan.mx_certificate
            tls = TlsFiles(cert / "fullchain.pem", cert / "privkey.pem")           # type: ignore[arg-type]
        recorder = (f"/usr/local/bin/mtasts-recorder --output {plan.data_directory}/received.jsonl {label}")
        for name, text in configs.receiver_files(server, names, addresses, paths, recorder,
                                                 plan.recorder_user, tls).items():
            files[f"{instance}/{name}"] = text
    policy_files = {}
    tls_by_label = {}
    for server in configs.policy_servers():
        label = server.label
        text = configs.policy_text(names, label).decode("ascii")
        files[f"policy/{label}/mta-sts.txt"] = text
        policy_files[label] = PurePosixPath(plan.policy_directory) / label / "mta-sts.txt"
        cert = live / plan.web_certificate
        tls_by_label[label] = TlsFiles(cert / "fullchain.pem", cert / "privkey.pem")  # type: ignore[arg-type]
    files["policy/nginx.conf"] = configs.nginx_config(
        names, plan.policy_v4, PurePosixPath("/run/mtasts-lab"),   # type: ignore[arg-type]
        PurePosixPath("/var/log/nginx"), PurePosixPath(plan.log_directory) / "policy-access.log",  # type: ignore[arg-type]
        policy_files, tls_by_label)                                # type: ignore[arg-type]
    return files
