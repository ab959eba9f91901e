"""The lab's configuration templates render completely, say what each server is, and
agree with what `mtasts ingest` reads. No servers, no root."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.lab import configs, design
from collectors.lab.configs import TlsFiles
from collectors.lab.dns import zone_records
from collectors.lab.templates import TEMPLATE_DIR, TemplateError, placeholders, render_text
from collectors.lab_ingest import LAB_NGINX_LOG_FORMAT
from support import require

NAMES = design.LabNames("lab.test")
ADDRESSES = design.LocalAddresses()
TLS = TlsFiles(Path("/srv/lab/cert.pem"), Path("/srv/lab/key.pem"))


def _paths(root: Path) -> dict[str, str]:
    return {"config_directory": str(root / "etc"), "queue_directory": str(root / "spool"),
            "data_directory": str(root / "data"), "maillog_file": str(root / "log" / "postfix.log"),
            "maillog_file_prefixes": str(root / "log")}


def _receiver(label: str, root: Path = Path("/srv/lab/a")) -> dict[str, str]:
    server = next(s for s in design.SERVERS if s.label == label)
    return configs.receiver_files(server, NAMES, ADDRESSES, _paths(root), "/usr/local/bin/mtasts-recorder "
                                  "--output /srv/lab/received.jsonl " + label, "nobody",
                                  None if server.tls == "none" else TLS)


def _main_cf(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", " ", "\t")) and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_every_template_placeholder_is_filled():
    for label in design.SERVER_LABELS:
        for name, text in _receiver(label).items():
            assert "{{" not in text and "}}" not in text, (label, name)
    for profile in POSTFIX_PROFILES:
        files = configs.sender_files(profile, NAMES, ADDRESSES, _paths(Path("/srv/lab/s")), Path("/srv/mail"),
                                     65534, 65534, Path("/srv/ca.pem"), design.QueueTimers())
        for name, text in files.items():
            assert "{{" not in text, (profile.name, name)
    for profile in EXIM_PROFILES:
        text = _exim_conf(profile)
        assert "{{" not in text, profile.name


@pytest.mark.parametrize("label, level", [("a", "may"), ("b", "none"), ("c", "may"), ("d", "may"),
                                          ("e", "encrypt"), ("f", "none")])
def test_each_receiver_is_its_test_case(label, level):
    main = _main_cf(_receiver(label)["main.cf"])
    assert main["smtpd_tls_security_level"] == level
    assert main["myhostname"] == f"mx.{label}.audit.lab.test"
    assert main["mydestination"].startswith(f"{label}.audit.lab.test")
    assert main["local_recipient_maps"] == ""          # any UUID local part is accepted
    assert main["smtpd_tls_received_header"] == "yes"  # TLS details reach the recorder
    assert main["mailbox_command"].endswith(f" {label}")
    assert main["syslog_name"] == f"postfix-{label}"  # log readers know it as Postfix
    if level != "none":
        assert main["smtpd_tls_chain_files"] == f"{TLS.key_file}, {TLS.cert_file}"
    else:
        assert "smtpd_tls_chain_files" not in main
    if label == "c":
        assert main["inet_protocols"] == "ipv6" and main["inet_interfaces"] == "[::1]"
    else:
        assert main["inet_protocols"] == "ipv4"


def test_alias_map_keeps_sender_and_queue_file():
    # owner-* must not match, or Postfix re-queues each message under a new sender.
    text = _receiver("a")["aliases.regexp"]
    assert "if !/^owner-/" in text and "!/^nobody$/\tnobody" in text


POSTFIX_PROFILES = [p for p in design.BUILTIN_PROFILES if p.mta == "postfix"]
EXIM_PROFILES = [p for p in design.BUILTIN_PROFILES if p.mta == "exim"]


def _sender_main(name: str) -> dict[str, str]:
    profile = design.builtin_profile(name)
    return _main_cf(configs.sender_files(profile, NAMES, ADDRESSES, _paths(Path("/srv/s")), Path("/srv/mail"), 1, 1,
                                         Path("/srv/ca.pem"), design.QueueTimers(delay_warning_time="30s"))["main.cf"])


def _exim_conf(profile) -> str:
    paths = {"exim_path": "/usr/sbin/exim4", "spool_directory": "/srv/x/spool", "log_directory": "/srv/x/log",
             "pid_file": "/srv/x/exim.pid", "exim_user": "Debian-exim"}
    return configs.exim_files(profile, NAMES, paths, Path("/srv/mail"), Path("/srv/ca.pem"),
                              design.QueueTimers(delay_warning_time="30s"))["exim4.conf"]


def _exim_options(text: str) -> dict[str, str]:
    """Every ``name = value`` line of an Exim configuration (indented ones too)."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not line.lstrip().startswith("#") and " " not in name.strip():
            values[name.strip()] = value.strip()
    return values


def test_senders_differ_only_in_tls_policy_and_notices():
    mains = {p.name: _sender_main(p.name) for p in POSTFIX_PROFILES}
    mta_sts, primed, opportunistic, dane = (mains[n] for n in (
        "postfix-mta-sts", "postfix-mta-sts-primed", "postfix-opportunistic", "postfix-dane"))
    # Each enforcing profile asks its own resolver daemon (its own cache).
    assert mta_sts["smtp_tls_policy_maps"] == "socketmap:inet:127.0.0.1:8461:postfix"
    assert primed["smtp_tls_policy_maps"] == "socketmap:inet:127.0.0.1:8462:postfix"
    assert "smtp_tls_policy_maps" not in opportunistic and "smtp_tls_policy_maps" not in dane
    for main in (mta_sts, primed, opportunistic):
        assert main["smtp_tls_security_level"] == "may"
        assert main["delay_warning_time"] == "30s"
    assert (dane["smtp_tls_security_level"], dane["smtp_dns_support_level"]) == ("dane", "dnssec")
    assert dane["delay_warning_time"] == "0"   # failure notice only
    for main in mains.values():
        assert main["bounce_queue_lifetime"] == main["maximal_queue_lifetime"] == "3m"
    assert len({m["smtp_bind_address"] for m in mains.values()}) == len(mains)
    assert {m["syslog_name"] for m in mains.values()} == set(mains)


def test_exim_profiles_differ_only_in_dane_requirement():
    confs = {p.name: _exim_options(_exim_conf(p)) for p in EXIM_PROFILES}
    default, required = confs["exim"], confs["exim-dane-required"]
    assert default["hosts_require_dane"] == "" and required["hosts_require_dane"] == "*"
    for conf in confs.values():
        assert conf["delay_warning"] == "10s:30s"      # a quick notice, then one every 30 s
        assert conf["dns_dnssec_ok"] == "1"
        assert conf["daemon_smtp_ports"] == "2525"
        assert "hosts_try_dane" not in conf             # Exim's default: * (DANE where TLSA exist)
    assert "F,3m,10s" in _exim_conf(EXIM_PROFILES[0])


def test_exim_reads_the_rendered_configuration(tmp_path):
    from collectors.lab.exim import exim_binary

    binary = exim_binary()
    require(binary is not None, "needs Exim (scripts/install-system-deps unpacks exim4-daemon-heavy)")
    for profile in EXIM_PROFILES:
        conf = tmp_path / f"{profile.name}.conf"
        conf.write_text(_exim_conf(profile))
        out = subprocess.run([str(binary), "-C", str(conf), "-bP", "transport", "remote_smtp"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        options = _exim_options(out.stdout)
        assert options["hosts_try_dane"] == "*"
        assert options["hosts_require_dane"] == ("*" if profile.dane == "required" else "")


def test_zone_publishes_tlsa_for_every_mx_under_a_policy():
    text = configs.zone_text(NAMES, ADDRESSES, "1", 1, "127.53.0.2", "ab" * 32)
    records = [line.split() for line in text.splitlines() if line.split()[1:2] == ["TLSA"]]
    assert [r[0] for r in records] == [f"_25._tcp.mx.{label}" for label in "abcde"]
    assert all(r[2:] == ["3", "1", "1", "ab" * 32] for r in records)
    without = configs.zone_text(NAMES, ADDRESSES, "1", 1, "127.53.0.2")
    assert not [line for line in without.splitlines() if line.split()[1:2] == ["TLSA"]]


@pytest.mark.skipif(shutil.which("postconf") is None and not Path("/usr/sbin/postconf").exists(),
                    reason="needs Postfix's postconf")
def test_postfix_reads_the_rendered_configuration_without_complaint(tmp_path):
    for label in design.SERVER_LABELS:
        root = tmp_path / label
        (root / "etc").mkdir(parents=True)
        for name, text in _receiver(label, root).items():
            (root / "etc" / name).write_text(text)
            # Postfix pauses on a main.cf changed within the last second or so; age the files.
            past = time.time() - 60
            os.utime(root / "etc" / name, (past, past))
        out = subprocess.run(["postconf", "-c", str(root / "etc"), "-n"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "warning" not in out.stderr, out.stderr
    # The alias table (the same for every server) parses, and leaves owner-* undefined.
    table = f"regexp:{tmp_path / 'a' / 'etc' / 'aliases.regexp'}"
    probe = subprocess.run(["postmap", "-q", "0f0e-uuid", table], capture_output=True, text=True)
    assert probe.stdout.strip() == "nobody", probe.stderr
    owner = subprocess.run(["postmap", "-q", "owner-0f0e", table], capture_output=True, text=True)
    assert owner.returncode == 1 and owner.stdout.strip() == ""


def test_zone_publishes_the_design():
    text = configs.zone_text(NAMES, ADDRESSES, "20240930", 1, "127.53.0.2")
    zone = dns.zone.from_text(text, origin="audit.lab.test.", relativize=False)

    def rrs(name, rdtype):
        rdataset = zone.get_rdataset(name, rdtype)
        return [r.to_text() for r in rdataset] if rdataset else []

    for server in design.SERVERS:
        d = f"{server.label}.audit.lab.test."
        assert rrs(d, "MX") == [f"10 mx.{d}"]
        if server.ipv6_only:
            assert rrs(f"mx.{d}", "AAAA") == ["::1"] and rrs(f"mx.{d}", "A") == []
        else:
            assert rrs(f"mx.{d}", "A") == [ADDRESSES.receiver(server.label)]
        sts = rrs(f"_mta-sts.{d}", "TXT")
        assert sts == (['"v=STSv1; id=20240930"'] if server.sts_policy else [])
        assert bool(rrs(f"mta-sts.{d}", "A")) == server.sts_policy
        tlsrpt = rrs(f"_smtp._tls.{d}", "TXT")
        assert tlsrpt == (['"v=TLSRPTv1; rua=https://tlsrpt.audit.lab.test/v1/report"'] if server.sts_policy else [])


def test_zone_records_for_the_testbed_do_not_delegate_the_zone():
    text = configs.zone_text(NAMES, ADDRESSES, "1", 1, "127.53.0.2")
    lines = zone_records(text, "audit.lab.test.")
    assert not [line for line in lines if line.startswith("audit.lab.test. ")]
    assert "mx.c.audit.lab.test. AAAA ::1" in lines
    assert all(line.split()[0].endswith(".") for line in lines)


def test_policy_is_valid_rfc8461_and_covers_its_mx_only():
    from collectors.rfc import mx_matches, parse_sts_policy

    for server in configs.policy_servers():
        body = configs.policy_text(NAMES, server.label)
        assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
        policy = parse_sts_policy(body)
        assert policy.ok, policy.findings
        assert policy.mode == "enforce" and policy.max_age == configs.POLICY_MAX_AGE
        assert mx_matches(NAMES.mx_host(server.label), list(policy.mx))
        other = next(s for s in design.SERVERS if s.label != server.label)
        assert not mx_matches(NAMES.mx_host(other.label), list(policy.mx))


def test_nginx_logs_in_the_format_ingest_reads(tmp_path):
    text = configs.nginx_config(NAMES, "127.77.3.1", tmp_path / "run", tmp_path / "logs", tmp_path / "access.log",
                                {s.label: tmp_path / s.label for s in configs.policy_servers()},
                                {s.label: TLS for s in configs.policy_servers()})
    match = re.search(r"log_format mtasts_lab '([^']*)';", text)
    assert match and match.group(1) == LAB_NGINX_LOG_FORMAT
    assert text.count("server_name mta-sts.") == len(configs.policy_servers()) == 5
    assert "mta-sts.f.audit.lab.test" not in text
    assert "{{" not in text


def test_template_values_must_match_placeholders():
    with pytest.raises(TemplateError, match="no value for b"):
        render_text("{{ a }} {{ b }}", {"a": 1})
    with pytest.raises(TemplateError, match="not used: c"):
        render_text("{{ a }}", {"a": 1, "c": 2})


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=20), max_size=5))
def test_rendering_substitutes_once_and_completely(values):
    text = " | ".join(f"{{{{ {name} }}}}" for name in values)
    out = render_text(text, values)
    assert out == " | ".join(str(v) for v in values.values())
    assert placeholders(text) == set(values)


def test_every_lab_template_file_is_used():
    used = {"postfix/master.cf", "postfix/receivers/main.cf", "postfix/receivers/aliases.regexp",
            "postfix/senders/main.cf", "postfix/senders/mailboxes", "mta-sts-resolver/mta-sts-daemon.yml",
            "policy/mta-sts.txt", "policy/nginx.conf", "policy/server.conf", "policy/site.conf",
            "policy/tlsrpt-proxy.conf", "dns/audit.zone"}
    used |= {f"postfix/receivers/{label}.cf" for label in design.SERVER_LABELS}
    used |= {f"postfix/senders/{p.postfix_policy}.cf" for p in POSTFIX_PROFILES}
    used |= {"exim/exim4.conf"}
    present = {str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*")
               if p.is_file() and p.parent.name not in ("recorder", "tlsrpt", "systemd")
               and p.suffix != ".md"}
    assert present == used
