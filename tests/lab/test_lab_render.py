"""``mtasts lab render``: the configuration of a lab on real hosts, from the local lab's own
templates — a zone that states the design, policies our RFC core accepts, Postfix
configurations that Postfix's own ``postconf`` reads, and clear refusals of bad plans."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from collectors.cli import main
from collectors.rfc import mx_matches, parse_sts_policy, parse_sts_record, parse_tlsrpt_record
from support import require_binaries

V4 = {"a": "198.51.100.11", "b": "198.51.100.12", "d": "198.51.100.14", "e": "198.51.100.15",
      "f": "198.51.100.16"}
ARGS = ["lab", "render", "--base", "example.org", *(x for label, a in V4.items() for x in (f"--{label}4", a)),
        "--c6", "2001:db8::13", "--policy4", "198.51.100.10", "--policy-id", "20261130", "--serial", "2026113001"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy")
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def _records(zone: dns.zone.Zone, name: str, kind: str) -> list[str]:
    node = zone.get_node(name)
    rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(kind)) if node else None
    return [r.to_text() for r in rdataset] if rdataset else []


def test_the_zone_states_the_design(rendered: Path) -> None:
    zone = dns.zone.from_text((rendered / "dns" / "audit.example.org.zone").read_text(),
                              origin="audit.example.org.", relativize=True)
    for label in "abcdef":
        assert _records(zone, label, "MX") == [f"10 mx.{label}"]
    assert _records(zone, "mx.c", "AAAA") == ["2001:db8::13"] and _records(zone, "mx.c", "A") == []
    assert _records(zone, "mx.d", "A") == ["198.51.100.14"]
    for label in "abcde":
        txt = [t.strip('"') for t in _records(zone, f"_mta-sts.{label}", "TXT")]
        record = parse_sts_record(txt)
        assert record.ok and record.id == "20261130"
        assert parse_tlsrpt_record([t.strip('"') for t in _records(zone, f"_smtp._tls.{label}", "TXT")]).rua == (
            "https://tlsrpt.audit.example.org/v1/report",)
        assert _records(zone, f"mta-sts.{label}", "A") == ["198.51.100.10"]
    assert _records(zone, "_mta-sts.f", "TXT") == [] and _records(zone, "_smtp._tls.f", "TXT") == []


def test_policies_are_valid_enforce_policies_for_their_own_mx(rendered: Path) -> None:
    for label in "abcde":
        body = (rendered / "policy" / label / "mta-sts.txt").read_bytes()
        policy = parse_sts_policy(body)
        assert policy.ok and policy.mode == "enforce" and policy.line_ending == "CRLF"
        assert mx_matches(f"mx.{label}.audit.example.org", list(policy.mx))
        assert not mx_matches(f"mx.{'b' if label == 'a' else 'a'}.audit.example.org", list(policy.mx))
    assert not (rendered / "policy" / "f").exists()
    nginx = (rendered / "nginx" / "mtasts-lab.conf").read_text()
    assert nginx.count("server_name mta-sts.") == 5 and "return 30" not in nginx and "rewrite" not in nginx
    assert "/etc/letsencrypt/live/lab-web/fullchain.pem" in nginx
    # a conf.d site of Debian's nginx: no process settings, which only a whole nginx.conf has
    assert not any(word in nginx for word in ("daemon off", "pid ", "events {", "http {", "worker_processes"))


def test_postfix_reads_each_receivers_configuration(rendered: Path) -> None:
    require_binaries("postconf")
    expected = {"a": "may", "b": "none", "c": "may", "d": "may", "e": "encrypt", "f": "none"}
    for label, level in expected.items():
        done = subprocess.run(["postconf", "-c", str(rendered / f"postfix-{label}"), "-n"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        # checked outside /etc, postconf notes that -c overrides the file's config_directory
        warnings = [w for w in done.stderr.splitlines() if "overriding earlier entry: config_directory" not in w]
        assert warnings == []
        settings = dict(line.split(" = ", 1) for line in done.stdout.splitlines() if " = " in line)
        assert settings["smtpd_tls_security_level"] == level
        assert settings["inet_protocols"] == ("ipv6" if label == "c" else "ipv4")
        assert settings["inet_interfaces"] == ("[2001:db8::13]" if label == "c" else V4[label])
        assert settings["default_transport"].startswith("error:")        # never sends mail
        assert settings["maillog_file"] == f"/var/log/mtasts-lab/postfix-{label}.log"
    d = (rendered / "postfix-d" / "main.cf").read_text()
    assert "/etc/postfix-d/wrong-name.pem" in d and "letsencrypt" not in d.split("smtpd_tls_chain_files")[-1]


def test_bad_plans_and_existing_files_are_one_line_refusals(tmp_path: Path, capsys) -> None:
    bad = [*ARGS, "--out", str(tmp_path / "x")]
    bad[bad.index("--c6") + 1] = "198.51.100.13"
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "server C: needs an IPv6 address" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "x").exists()
    assert main([*ARGS, "--policy-id", "not-valid!", "--out", str(tmp_path / "y")]) == 2
    assert "RFC 8461 section 3.1" in capsys.readouterr().err
    assert main([*ARGS, "--out", str(tmp_path / "z")]) == 0
    assert main([*ARGS, "--out", str(tmp_path / "z")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*ARGS, "--out", str(tmp_path / "z"), "--force"]) == 0


def test_the_install_map_places_every_host_file_and_the_guide_names_only_rendered_paths(rendered: Path) -> None:
    from collectors.lab.deploy import DeployPlan, install_map

    names = sorted(str(p.relative_to(rendered)) for p in rendered.rglob("*") if p.is_file())
    plan = DeployPlan(base="example.org", receivers_v4=V4, receiver_c_v6="2001:db8::13", policy_v4="198.51.100.10")
    placed = install_map(plan, names)
    not_installed = {n for n in names if n not in placed}
    assert not_installed == {"dns/audit.example.org.zone", "INSTALL.md", "install.sh", "collect-evidence.sh",
                             "plan.json"}
    script = (rendered / "install.sh").read_text()
    for name, where in placed.items():
        assert f"install -D -m {where.mode} '{name}' '{where.destination}'" in script
    guide = (Path(__file__).resolve().parents[2] / "docs" / "lab-deploy.md").read_text()
    for path in ("/etc/nginx/conf.d/mtasts-lab.conf", "/etc/systemd/system/mtasts-tlsrpt-receiver.service",
                 "/etc/systemd/system/mtasts-lab-status.service",
                 "/etc/letsencrypt/renewal-hooks/deploy/mtasts-lab-reload.sh"):
        assert path in guide and path in script
    everything = "\n".join((rendered / n).read_text() for n in names)
    for evidence in ("/var/log/mtasts-lab/policy-access.log", "/var/lib/mtasts-lab/received.jsonl",
                     "/var/lib/mtasts-lab/tlsrpt-posts.jsonl"):
        assert evidence in guide
        assert everything.count(evidence) >= 2, evidence  # written by one rendered file, collected by another
    for label in "abcdef":  # each instance writes its log where the collection's glob finds it
        assert f"maillog_file = /var/log/mtasts-lab/postfix-{label}.log" in (rendered / f"postfix-{label}" / "main.cf").read_text()
    assert "/var/log/mtasts-lab/postfix-*.log" in (rendered / "collect-evidence.sh").read_text()
    assert "0.0.0.0" not in everything and "SupplementaryGroups" not in everything
    assert "../shared" not in guide and "audit-lab-access.log" not in guide


# Paths the guide names that no rendered file holds, each for its reason.
NOT_RENDERED = {
    "/opt/mtasts/bin/pip": "installs the project itself on the lab host (section 6)",
    "/opt/mtasts-exim4": "the local lab's Exim, on your own machine (Trying it locally first)",
    "/var/tmp": "the sample's work directory, on your own machine",
}


def test_every_host_path_in_the_guide_is_one_the_render_writes_or_installs(rendered: Path) -> None:
    """The guide only says where rendered files go and which commands to run: each absolute
    path it names on the lab host is in a rendered file or is where one is installed."""
    import re

    from collectors.lab.deploy import DeployPlan, install_map

    guide = (Path(__file__).resolve().parents[2] / "docs" / "lab-deploy.md").read_text()
    names = sorted(str(p.relative_to(rendered)) for p in rendered.rglob("*") if p.is_file())
    plan = DeployPlan(base="example.org", receivers_v4=V4, receiver_c_v6="2001:db8::13", policy_v4="198.51.100.10")
    everything = "\n".join((rendered / n).read_text() for n in names) + "\n".join(
        where.destination for where in install_map(plan, names).values())
    named = set(re.findall(r"(?<![\w.-])/(?:etc|var|srv|usr|opt|run)/[\w./@*-]*[\w*]", guide))
    named = {p for p in named if "<" not in p}
    assert named - NOT_RENDERED.keys(), "the guide names no host path at all?"
    missing = sorted(p for p in named - NOT_RENDERED.keys() if p not in everything)
    assert missing == [], missing
    # Its programs are rendered and installed too, never copied from the repository by hand.
    assert (rendered / "bin" / "mtasts-recorder").read_text().startswith("#!/usr/bin/env python3")
    script = (rendered / "install.sh").read_text()
    assert "install -D -m 0755 'bin/mtasts-recorder' '/usr/local/bin/mtasts-recorder'" in script
    assert "id -u mtastslab >/dev/null 2>&1 || adduser --system" in script
    assert "lab/recorder/mtasts-recorder" not in guide


def test_the_guides_placeholder_values_for_server_a_are_the_rendered_ones(rendered: Path) -> None:
    """Section 3's table, value by value, against what the render wrote for A (C, D)."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "lab-deploy.md").read_text()
    table = guide.split("| placeholder | value for server A |", 1)[1].split("\n\n", 1)[0]
    files = {label: "\n".join((rendered / f"postfix-{label}" / n).read_text()
                              for n in ("main.cf", "aliases.regexp")) for label in "acd"}
    concrete = {"A4": V4["a"], "C6": "2001:db8::13"}
    checked = 0
    for row in table.strip().splitlines()[1:]:
        values = row.split("|")[2]
        for value in re_values(values):
            if value.startswith(".../") or value in ("A", "a"):   # an ellipsis; a label alone
                continue
            for placeholder, address in concrete.items():
                value = value.replace(placeholder, address)
            assert any(value in text for text in files.values()), (row, value)
            checked += 1
    assert checked >= 15


def re_values(cell: str) -> list[str]:
    import re

    return re.findall(r"`([^`]+)`", cell)
