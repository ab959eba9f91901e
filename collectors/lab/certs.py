"""The lab's certificates, issued by the testbed's private CA (the one the lab
namespace trusts, as senders on the internet trust the public CAs).

Server D gets what RFC 8461 section 4.2 forbids a sender to accept: a self-signed
certificate for a name other than its MX host.
"""

from __future__ import annotations

from pathlib import Path

from collectors.lab.configs import TlsFiles
from collectors.testbed import Pki

WRONG_NAME = "wrong-name.invalid"  # RFC 2606: a name that can never be the MX host's


def issue_files(pki: Pki, directory: Path, stem: str, name: str, kind: str = "valid") -> TlsFiles:
    """Write ``<stem>.pem`` (certificate for ``name`` of ``kind``) and ``<stem>.key``
    into ``directory``. Every testbed leaf shares one key; each server gets a copy."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = pki.issue(name, kind)
    if pem is None:
        raise ValueError(f"certificate kind {kind!r} yields no certificate")
    cert_file = directory / f"{stem}.pem"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(pki.leaf_key_pem())
    key_file.chmod(0o600)
    return TlsFiles(cert_file, key_file)


def server_certificate(pki: Pki, directory: Path, label: str, mx_host: str, tls: str) -> TlsFiles | None:
    """The certificate a receiving server presents (None: it offers no STARTTLS)."""
    if tls == "none":
        return None
    if tls == "wrong_name":
        return issue_files(pki, directory, f"mx-{label}", WRONG_NAME, "self_signed")
    return issue_files(pki, directory, f"mx-{label}", mx_host, "valid")
