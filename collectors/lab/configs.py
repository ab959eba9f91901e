"""Every configuration file of one lab, rendered from the templates in ``lab/``.

Pure: takes the design, names, addresses and paths, returns file texts. The same
templates are what docs/lab-deploy.md tells an operator to fill in on real hosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.lab.design import (
    SERVERS, LabNames, LocalAddresses, QueueTimers, SenderProfile, ServerSpec,
)
from collectors.lab.templates import render

POLICY_MAX_AGE = 86400  # seconds; RFC 8461 section 3.2 allows up to 31557600


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: Path
    key_file: Path


def receiver_files(server: ServerSpec, names: LabNames, addresses: LocalAddresses,
                   paths: dict[str, str], recorder_command: str, recorder_user: str,
                   tls: TlsFiles | None) -> dict[str, str]:
    """main.cf, master.cf and aliases.regexp of receiving server ``server``."""
    values = {
        "label": server.label,
        "label_upper": server.label.upper(),
        "description": server.description,
        "mx_host": names.mx_host(server.label),
        "domain": names.domain(server.label),
        "listen_address": _postfix_address(addresses.receiver(server.label)),
        "inet_protocols": "ipv6" if server.ipv6_only else "ipv4",
        "mynetworks": _mynetworks(addresses.receiver(server.label)),
        "syslog_name": syslog_name(server.label),
        "recorder_command": recorder_command,
        "recorder_user": recorder_user,
        **paths,
    }
    tls_values = {"cert_file": str(tls.cert_file), "key_file": str(tls.key_file)} if tls else {}
    main = render("postfix/receivers/main.cf", values) + "\n" + render(
        f"postfix/receivers/{server.label}.cf", {**values, **tls_values})
    return {
        "main.cf": main,
        "master.cf": render("postfix/master.cf", {}),
        "aliases.regexp": render("postfix/receivers/aliases.regexp", values),
    }


def _sender_values(profile: SenderProfile, names: LabNames, mailbox_base: Path, ca_file: Path) -> dict[str, str]:
    """The template values every sender profile has, whichever its MTA."""
    return {
        "profile": profile.name,
        "mta_host": profile.mta_host(names),
        "sender_domain": profile.sender_domain(names),
        "account": profile.account,
        "listen_address": profile.address,
        "bind_address": profile.address,
        "bind_address6": profile.address6,
        "mailbox_base": str(mailbox_base),
        "ca_file": str(ca_file),
    }


def sender_files(profile: SenderProfile, names: LabNames, addresses: LocalAddresses,
                 paths: dict[str, str], mailbox_base: Path, mailbox_uid: int, mailbox_gid: int,
                 ca_file: Path, timers: QueueTimers) -> dict[str, str]:
    """main.cf, master.cf and the mailbox map of a built-in Postfix sender profile."""
    values = {
        **_sender_values(profile, names, mailbox_base, ca_file),
        "mynetworks": f"{profile.address}/32",
        "syslog_name": syslog_name(profile.name),
        "mailbox_uid": mailbox_uid,
        "mailbox_gid": mailbox_gid,
        "resolver_address": addresses.resolver_daemon,
        "resolver_port": profile.resolver_port,
        **profile.notice_settings(timers),
        **paths,
    }
    main = render("postfix/senders/main.cf", values) + "\n" + render(
        f"postfix/senders/{profile.postfix_policy}.cf", values)
    return {
        "main.cf": main,
        "master.cf": render("postfix/master.cf", {}),
        "mailboxes": render("postfix/senders/mailboxes", values),
    }


def exim_files(profile: SenderProfile, names: LabNames, paths: dict[str, str], mailbox_base: Path,
               ca_file: Path, timers: QueueTimers) -> dict[str, str]:
    """The Exim configuration file of an Exim sender profile (``exim4.conf``)."""
    notices = profile.notice_settings(timers)
    values = {
        **_sender_values(profile, names, mailbox_base, ca_file),
        "submit_port": profile.submit_port,
        "hosts_require_dane": "*" if profile.dane == "required" else "",
        "delay_warning": notices["delay_warning"],
        "retry": notices["retry"],
        **paths,
    }
    return {"exim4.conf": render("exim/exim4.conf", values, strict_unused=True)}


def mta_sts_daemon_config(addresses: LocalAddresses, port: int) -> str:
    return render("mta-sts-resolver/mta-sts-daemon.yml", {
        "resolver_address": addresses.resolver_daemon,
        "resolver_port": port,
    })


def policy_text(names: LabNames, label: str, mode: str = "enforce",
                max_age: int = POLICY_MAX_AGE) -> bytes:
    """The policy of one lab domain, CRLF line endings (RFC 8461 section 3.2)."""
    text = render("policy/mta-sts.txt", {"mode": mode, "mx_host": names.mx_host(label), "max_age": max_age})
    return "\r\n".join(text.splitlines()).encode("ascii") + b"\r\n"


def policy_servers() -> tuple[ServerSpec, ...]:
    """The servers whose domain publishes a policy (all but F)."""
    return tuple(s for s in SERVERS if s.sts_policy)


def nginx_site(names: LabNames, listen: str, access_log: Path, policy_files: dict[str, Path],
               tls: dict[str, TlsFiles], tlsrpt_proxy: dict[str, object] | None = None) -> str:
    """The policy server as an nginx site (http context): one server block per lab domain
    with a policy, and, when ``tlsrpt_proxy`` gives its values, the TLS-RPT endpoint
    proxied to the receiver on loopback (lab/policy/tlsrpt-proxy.conf)."""
    blocks = []
    for server in policy_servers():
        blocks.append(render("policy/server.conf", {
            "domain": names.domain(server.label),
            "label_upper": server.label.upper(),
            "listen": listen,
            "policy_host": names.policy_host(server.label),
            "cert_file": tls[server.label].cert_file,
            "key_file": tls[server.label].key_file,
            "policy_file": policy_files[server.label],
            "access_log": access_log,
        }))
    if tlsrpt_proxy is not None:
        blocks.append(render("policy/tlsrpt-proxy.conf", {
            "listen": listen, "tlsrpt_host": names.tlsrpt_host, "access_log": access_log, **tlsrpt_proxy}))
    return render("policy/site.conf", {"listen": listen, "access_log": access_log, "servers": "\n".join(blocks)})


def nginx_config(names: LabNames, listen: str, run_directory: Path, log_directory: Path,
                 access_log: Path, policy_files: dict[str, Path],
                 tls: dict[str, TlsFiles]) -> str:
    """The local lab's whole nginx.conf: process settings around :func:`nginx_site`."""
    return render("policy/nginx.conf", {
        "run_directory": run_directory,
        "log_directory": log_directory,
        "site": nginx_site(names, listen, access_log, policy_files, tls),
    })


def zone_text(names: LabNames, addresses: LocalAddresses, policy_id: str, serial: int,
              nameserver_v4: str, tlsa_association: str | None = None) -> str:
    """The lab's zone file (BIND syntax, ``$ORIGIN audit.<base>.``); ``tlsa_association``
    is the SHA-256 of the servers' key (TLSA 3 1 1, RFC 7671 section 5.1), None for a
    zone without TLSA records (they need DNSSEC and a key known in advance)."""
    values: dict[str, object] = {
        "tlsa_association": tlsa_association or "-",
        "base": names.base,
        "serial": serial,
        "nameserver_v4": nameserver_v4,
        "policy_v4": addresses.policy_server,
        "tlsrpt_v4": addresses.tlsrpt_server,
        "tlsrpt_uri": names.tlsrpt_uri,
        "policy_id": policy_id,
    }
    for server in SERVERS:
        key = f"{server.label}_v6" if server.ipv6_only else f"{server.label}_v4"
        values[key] = addresses.receiver(server.label)
    text = render("dns/audit.zone", values, strict_unused=True)
    if tlsa_association is None:
        text = "".join(line for line in text.splitlines(keepends=True) if line.split()[1:2] != ["TLSA"])
    return text


def syslog_name(instance: str) -> str:
    """The instance's syslog_name: ``postfix-<instance>``, Postfix's multi-instance
    convention, which log readers (and `mtasts ingest`) recognise as Postfix."""
    return instance if instance.startswith("postfix") else f"postfix-{instance}"


def _postfix_address(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _mynetworks(address: str) -> str:
    return f"[{address}]/128" if ":" in address else f"{address}/32"
