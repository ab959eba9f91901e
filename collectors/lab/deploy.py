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
from collectors.lab.templates import render, template_path

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
    mtasts_command: str = "/opt/mtasts/bin/mtasts"   # the project, installed on the lab host
    status_token_file: str = "/etc/mtasts-lab/status-token"

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


# The lab's own programs on the lab host (/usr/local/bin/<name>), from the repository's lab/.
PROGRAMS = {"mtasts-recorder": "recorder/mtasts-recorder", "mtasts-tlsrpt-receiver": "tlsrpt/mtasts-tlsrpt-receiver"}
RECEIVER_LISTEN = "127.0.0.1"     # the TLS-RPT receiver, behind nginx on the same host
RECEIVER_PORT = 8443
STATUS_PORT = 8444                 # the live view (`mtasts lab serve-status`), also on RECEIVER_LISTEN
MAX_REPORT_BODY_BYTES = 8 * 1024 * 1024
MAX_TLSRPT_OUTPUT_BYTES = 1024 ** 3
TLSRPT_CONNECTIONS_PER_CLIENT = 4


@dataclass(frozen=True, slots=True)
class Installed:
    """Where a rendered file goes on the lab host, and its mode."""

    destination: str
    mode: str = "0644"


def render_deployment(plan: DeployPlan) -> dict[str, str]:
    """Every file, by path relative to an output folder (each one's place on the lab host
    is in :func:`install_map`, written out as ``INSTALL.md`` and ``install.sh``):

    * ``dns/audit.<base>.zone``: the zone (or the records to create at a DNS provider);
    * ``postfix-<x>/main.cf``, ``master.cf``, ``aliases.regexp``: receivers A-F;
    * ``policy/<x>/mta-sts.txt`` (CRLF, RFC 8461 section 3.2); ``nginx/mtasts-lab.conf``: the
      policy server and the TLS-RPT endpoint as a site of Debian's nginx (conf.d);
    * ``systemd/mtasts-tlsrpt-receiver.service``, ``systemd/mtasts-lab-status.service`` (the live
      view of arrivals), ``letsencrypt/mtasts-lab-reload.sh``;
    * ``bin/mtasts-recorder``, ``bin/mtasts-tlsrpt-receiver``: the programs the receivers'
      ``mailbox_command`` and the receiver's unit run (copies of ``lab/``, stdlib only);
    * ``collect-evidence.sh``: copies every evidence file ``mtasts ingest`` reads, from the
      very paths the other files write to.
    """
    problems = plan.problems()
    if problems:
        raise ValueError("; ".join(problems))
    names = LabNames(plan.base)
    addresses = LocalAddresses(
        receivers_v4=dict(plan.receivers_v4),
        receivers_v6={s.label: plan.receiver_c_v6 for s in SERVERS if s.ipv6_only},
        policy_server=plan.policy_v4, tlsrpt_server=plan.tlsrpt_v4 or plan.policy_v4)
    files: dict[str, str] = {
        f"dns/audit.{plan.base}.zone": configs.zone_text(names, addresses, plan.policy_id, plan.serial,
                                                         plan.nameserver_v4 or plan.policy_v4,
                                                         plan.tlsa_association),
    }
    files.update(_receiver_files(plan, names, addresses))
    files.update(_policy_files(plan, names))
    files.update(_service_files(plan, names))
    files.update({f"bin/{name}": template_path(source).read_text() for name, source in PROGRAMS.items()})
    files["INSTALL.md"] = _install_text(plan, files)
    files["install.sh"] = _install_script(plan, files)
    return files


def evidence_paths(plan: DeployPlan) -> dict[str, str]:
    """Each evidence file on the lab host (glob allowed) -> its name in the evidence folder."""
    return {
        f"{plan.log_directory}/postfix-*.log": "postfix/",
        f"{plan.log_directory}/policy-access.log": "policy-access.log",
        f"{plan.data_directory}/received.jsonl": "received.jsonl",
        f"{plan.data_directory}/tlsrpt-posts.jsonl": "tlsrpt-posts.jsonl",
    }


def install_map(plan: DeployPlan, rendered: list[str]) -> dict[str, Installed]:
    """Rendered file -> where it goes on the lab host (files not listed are not installed)."""
    out: dict[str, Installed] = {}
    for name in rendered:
        top, _, rest = name.partition("/")
        if top.startswith("postfix-"):
            out[name] = Installed(f"/etc/{top}/{rest}")
        elif top == "policy":
            out[name] = Installed(f"{plan.policy_directory}/{rest}")
        elif name == "nginx/mtasts-lab.conf":
            out[name] = Installed("/etc/nginx/conf.d/mtasts-lab.conf")
        elif top == "systemd":
            out[name] = Installed(f"/etc/systemd/system/{rest}")
        elif name == "letsencrypt/mtasts-lab-reload.sh":
            out[name] = Installed("/etc/letsencrypt/renewal-hooks/deploy/mtasts-lab-reload.sh", "0755")
        elif top == "bin":
            out[name] = Installed(f"/usr/local/bin/{rest}", "0755")
    return out


def _receiver_files(plan: DeployPlan, names: LabNames, addresses: LocalAddresses) -> dict[str, str]:
    files = {}
    live = PurePosixPath(plan.acme_live)
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
    return files


def _policy_files(plan: DeployPlan, names: LabNames) -> dict[str, str]:
    files, policy_files, tls_by_label = {}, {}, {}
    web = PurePosixPath(plan.acme_live) / plan.web_certificate
    web_tls = TlsFiles(web / "fullchain.pem", web / "privkey.pem")            # type: ignore[arg-type]
    for server in configs.policy_servers():
        label = server.label
        files[f"policy/{label}/mta-sts.txt"] = configs.policy_text(names, label).decode("ascii")
        policy_files[label] = PurePosixPath(plan.policy_directory) / label / "mta-sts.txt"
        tls_by_label[label] = web_tls
    proxy = {"listen": plan.tlsrpt_v4 or plan.policy_v4, "cert_file": web_tls.cert_file,
             "tlsrpt_access_log": f"{plan.log_directory}/tlsrpt-access.log",
             "status_listen": RECEIVER_LISTEN, "status_port": STATUS_PORT, "key_file": web_tls.key_file,
             "receiver_listen": RECEIVER_LISTEN, "receiver_port": RECEIVER_PORT,
             "max_body_bytes": MAX_REPORT_BODY_BYTES, "connections_per_client": TLSRPT_CONNECTIONS_PER_CLIENT}
    files["nginx/mtasts-lab.conf"] = configs.nginx_site(
        names, plan.policy_v4,
        PurePosixPath(plan.log_directory) / "policy-access.log",        # type: ignore[arg-type]
        policy_files, tls_by_label, proxy)                                 # type: ignore[arg-type]
    return files


def _service_files(plan: DeployPlan, names: LabNames) -> dict[str, str]:
    with_certificates = [configs.syslog_name(s.label) for s in SERVERS if s.tls not in ("none", "wrong_name")]
    reload_lines = "".join(f"postfix -c /etc/{i} reload\n" for i in with_certificates)
    return {
        "systemd/mtasts-tlsrpt-receiver.service": render("systemd/mtasts-tlsrpt-receiver.service", {
            "tlsrpt_host": names.tlsrpt_host, "receiver_listen": RECEIVER_LISTEN,
            "receiver_port": RECEIVER_PORT, "data_directory": plan.data_directory,
            "max_body_bytes": MAX_REPORT_BODY_BYTES, "max_output_bytes": MAX_TLSRPT_OUTPUT_BYTES,
            "recorder_user": plan.recorder_user}, strict_unused=True),
        "systemd/mtasts-lab-status.service": render("systemd/mtasts-lab-status.service", {
            "tlsrpt_host": names.tlsrpt_host, "token_file": plan.status_token_file, "mtasts": plan.mtasts_command,
            "lab_domain": names.zone, "data_directory": plan.data_directory,
            "log_directory": plan.log_directory, "status_listen": RECEIVER_LISTEN, "status_port": STATUS_PORT,
            "recorder_user": plan.recorder_user}, strict_unused=True),
        "letsencrypt/mtasts-lab-reload.sh": (
            "#!/bin/sh\n# certbot deploy hook (rendered by `mtasts lab render`): whatever presents the\n"
            "# renewed certificates reads them again. nginx and Postfix read keys as root.\n"
            f"{reload_lines}systemctl reload nginx\n"),
        "collect-evidence.sh": _collect_script(plan),
    }


def _collect_script(plan: DeployPlan) -> str:
    """rsync every evidence file home, from each host named, into a folder per host (one lab
    host, or servers on hosts of their own: each keeps only its own files). A file a host has
    not written (no message or report so far, or not its part) is no error; one that no host
    has is named, so the evidence can be pulled at any time."""
    sources = evidence_paths(plan)
    lines = [f'    rsync -a --ignore-missing-args "$host:{source}" "$dest/$host/{target}"'
             for source, target in sources.items()]
    expected = " ".join(target for target in sources.values() if not target.endswith("/"))
    return ("#!/bin/sh\n# Copy the lab's evidence home (rendered by `mtasts lab render`; the same paths the\n"
            "# lab's files write to), each host's into DEST/HOST/. Usage: collect-evidence.sh DEST HOST [HOST...]\n"
            "# (the lab host; or, with servers on hosts of their own, every one of them). Needs ssh and rsync.\n"
            "set -eu\n"
            '[ $# -ge 2 ] || { echo "usage: $0 DEST HOST [HOST...]" >&2; exit 2; }\n'
            "dest=$1\nshift\n"
            'for host in "$@"; do\n'
            '    mkdir -p "$dest/$host/postfix"\n' + "\n".join(lines) + "\n"
            '    echo "$host: $(find "$dest/$host" -type f | wc -l) evidence files"\n'
            "done\n"
            f"for file in {expected}; do\n"
            '    ls "$dest"/*/"$file" >/dev/null 2>&1 || echo "not on $* yet (nothing recorded so far): $file" >&2\n'
            "done\n"
            'ls "$dest"/*/postfix/*.log >/dev/null 2>&1 || echo "no Postfix logs on $*: is the lab installed?" >&2\n'
            'echo "now: mtasts ingest --db data/observatory.duckdb $dest LEDGER NOTICES..."\n')


def _install_text(plan: DeployPlan, files: dict[str, str]) -> str:
    rows = "".join(f"| `{name}` | `{where.destination}` | {where.mode} |\n"
                   for name, where in install_map(plan, list(files)).items())
    return ("# Where each rendered file goes on the lab host\n\n"
            "Rendered by `mtasts lab render`; `sh install.sh` (as root, from this folder) does exactly this.\n"
            f"The zone (`dns/audit.{plan.base}.zone`) goes to your DNS; `collect-evidence.sh` runs on your own\n"
            "machine, and so does `mtasts lab verify plan.json`, which checks the deployment against this plan\n"
            "(`plan.json`, written beside these files; docs/lab-deploy.md, the closing checklist).\n\n| rendered file | on the lab host | mode |\n|---|---|---|\n" + rows)


def _install_script(plan: DeployPlan, files: dict[str, str]) -> str:
    commands = "".join(f"install -D -m {where.mode} '{name}' '{where.destination}'\n"
                       for name, where in install_map(plan, list(files)).items())
    user = plan.recorder_user
    return ("#!/bin/sh\n# Install the rendered lab files (rendered by `mtasts lab render`; see INSTALL.md).\n"
            f'set -eu\ncd "$(dirname "$0")"\n'
            "# The recorder's account: the receivers deliver to it, the TLS-RPT receiver and the live view run as it.\n"
            f"id -u {user} >/dev/null 2>&1 || adduser --system --group --no-create-home --home /nonexistent {user}\n"
            f"install -d -m 0755 {plan.log_directory} {plan.data_directory}\n"
            f"chown {user}:{user} {plan.data_directory}\n" + commands)
