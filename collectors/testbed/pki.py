"""The testbed's private PKI: a trusted CA, an untrusted ("rogue") CA, and certificates of
every kind a scenario names (valid, name mismatch, self-signed, expired, unknown CA).

All leaf certificates share one leaf key, so issuing 100,000 of them takes seconds and a
TLSA record (DANE-EE, SPKI, SHA-256) for any of them is known in advance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def _ca_cert(key: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


@dataclass
class Pki:
    """The CAs and the shared leaf key of one testbed workdir (created once, then reused)."""

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    rogue_key: ec.EllipticCurvePrivateKey
    rogue_cert: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @property
    def ca_bundle(self) -> Path:
        """The PEM a client must trust (the crawler's ``--ca-bundle``)."""
        return self.directory / "ca.pem"

    @property
    def leaf_key_path(self) -> Path:
        return self.directory / "leaf.key"

    @classmethod
    def open(cls, directory: Path) -> "Pki":
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = _load_or_make_key(directory / "ca.key")
        rogue_key = _load_or_make_key(directory / "rogue-ca.key")
        leaf_key = _load_or_make_key(directory / "leaf.key")
        certs = {}
        for stem, key, cn in (("ca", ca_key, "MTA-STS Observatory Testbed CA"),
                              ("rogue-ca", rogue_key, "Untrusted Testbed CA")):
            path = directory / f"{stem}.pem"
            cert = x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None
            if cert is None or cert.public_key() != key.public_key() or cert.not_valid_after_utc < _now() + dt.timedelta(days=30):
                cert = _ca_cert(key, cn)
                path.write_bytes(cert.public_bytes(_PEM))
            certs[stem] = cert
        return cls(directory, ca_key, certs["ca"], rogue_key, certs["rogue-ca"], leaf_key)

    def leaf_key_pem(self) -> bytes:
        return self.leaf_key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def tlsa_spki_sha256(self) -> str:
        """TLSA "3 1 1" association data for every leaf certificate (they share one key)."""
        spki = self.leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()

    def issue(self, name: str, kind: str, *, mismatch_names: tuple[str, ...] = ()) -> bytes | None:
        """PEM of a leaf certificate for ``name`` of the given kind (None for kind "none").

        name_mismatch: valid chain and dates, but for ``mismatch_names`` (default: a
        different host) instead of ``name``; self_signed: issuer = subject, own key;
        expired: valid chain, validity ended a month ago; unknown_ca: signed by a CA that
        is not in the bundle; wildcard: valid, but only for ``*.<parent of name>``.
        """
        if kind == "none":
            return None
        now = _now()
        names = (name,)
        issuer_key, issuer_name = self.ca_key, self.ca_cert.subject
        not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
        key = self.leaf_key
        if kind == "name_mismatch":
            names = mismatch_names or (f"wrong-name.{name}",)
        elif kind == "self_signed":
            issuer_key, issuer_name = self.leaf_key, _name(name)
        elif kind == "expired":
            not_before, not_after = now - dt.timedelta(days=400), now - dt.timedelta(days=30)
        elif kind == "unknown_ca":
            issuer_key, issuer_name = self.rogue_key, self.rogue_cert.subject
        elif kind == "wildcard":
            names = ("*." + name.split(".", 1)[1],)  # RFC 6125 6.4.3: covers the left-most label
        elif kind != "valid":
            raise ValueError(f"unknown certificate kind {kind!r}")
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0])).issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if kind != "self_signed":
            builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(_PEM)
