"""Self-check of the catalogue world: for every case, plain clients (dnspython, ssl,
http.client, smtplib) confirm the real servers behave as the case says."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from collectors.testbed import load_catalogue
from collectors.testbed.scenario import Domain
from collectors.testbed.selfcheck import Checker

pytestmark = pytest.mark.servers
CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def checker(catalogue_world):
    return Checker.for_world(catalogue_world, CATALOGUE)


@pytest.mark.parametrize("domain", CATALOGUE.domains, ids=lambda d: d.case)
def test_case_is_served_as_the_scenario_says(catalogue_world, checker: Checker, domain: Domain) -> None:
    assert catalogue_world.call(checker.check, domain) == []


def test_the_self_check_notices_a_server_that_differs(catalogue_world, checker: Checker) -> None:
    """The check can fail: describe a case wrongly and it reports every difference."""
    from dataclasses import replace

    d = CATALOGUE.by_case("valid-enforce")
    wrong = replace(d, dnssec="signed", sts=(("v=STSv1; id=other",),),
                    policy_host=replace(d.policy_host, certificate="expired", body="mode: none\n"))
    problems = catalogue_world.call(checker.check, wrong)
    text = "\n".join(problems)
    assert "AD bit" in text and "TXT" in text and "certificate verifies as valid" in text and "want 200" in text


def _query(world, name: str, rdtype: str, cd: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    if cd:
        q.flags |= dns.flags.CD
    return dns.query.udp(q, world.resolver[0], port=world.resolver[1], timeout=3)


def test_dnssec_is_a_real_ad_bit_and_bogus_is_servfail(catalogue_world) -> None:
    def run():
        signed = _query(catalogue_world, "dnssec-signed.test", "MX")
        plain = _query(catalogue_world, "valid-enforce.test", "MX")
        bogus = _query(catalogue_world, "dnssec-bogus.test", "MX")
        bogus_cd = _query(catalogue_world, "dnssec-bogus.test", "MX", cd=True)
        tlsa = _query(catalogue_world, "_25._tcp.mx1.dnssec-tlsa.test", "TLSA")
        return signed, plain, bogus, bogus_cd, tlsa

    signed, plain, bogus, bogus_cd, tlsa = catalogue_world.call(run)
    assert signed.flags & dns.flags.AD and signed.answer
    assert not plain.flags & dns.flags.AD and plain.answer
    assert bogus.rcode() == dns.rcode.SERVFAIL
    assert bogus_cd.rcode() == dns.rcode.NOERROR and bogus_cd.answer
    assert tlsa.flags & dns.flags.AD and tlsa.answer


def test_names_outside_the_world_are_nxdomain_quickly(catalogue_world) -> None:
    r = catalogue_world.call(_query, catalogue_world, "example.com", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


def _policy_address(world, host: str) -> str:
    r = world.call(_query, world, host, "A")
    return [rd.address for rrset in r.answer for rd in rrset if rrset.rdtype == 1][0]


def test_stalling_host_accepts_and_never_answers(catalogue_world) -> None:
    ip = _policy_address(catalogue_world, "mta-sts.fetch-stall.test")

    def run():
        with socket.create_connection((ip, catalogue_world.https_port), timeout=3) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello")
            s.settimeout(1.5)
            t0 = time.monotonic()
            with pytest.raises(socket.timeout):
                s.recv(1)
            return time.monotonic() - t0

    assert catalogue_world.call(run) >= 1.4


def test_mx_certificates_verify_only_when_valid(catalogue_world) -> None:
    ctx = ssl.create_default_context(cafile=str(catalogue_world.ca_bundle))
    plan = Checker.for_world(catalogue_world, CATALOGUE).plan

    def starttls(host: str):
        with smtplib.SMTP(plan.mx_addresses[host], catalogue_world.smtp_port, timeout=3) as smtp:
            smtp._host = host
            smtp.ehlo()
            smtp.starttls(context=ctx)
            cert = smtp.sock.getpeercert()
            smtp.quit()
            return cert

    good = catalogue_world.call(starttls, "mx1.valid-enforce.test")
    assert ("DNS", "mx1.valid-enforce.test") in good["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError):
        catalogue_world.call(starttls, "mx1.mx-cert-expired.test")


def test_smtp_listener_never_accepts_mail(catalogue_world) -> None:
    plan = Checker.for_world(catalogue_world, CATALOGUE).plan

    def run():
        with smtplib.SMTP(plan.mx_addresses["mx1.valid-enforce.test"], catalogue_world.smtp_port, timeout=3) as s:
            s.ehlo()
            return s.mail("someone@example.test")

    code, _ = catalogue_world.call(run)
    assert code == 550
