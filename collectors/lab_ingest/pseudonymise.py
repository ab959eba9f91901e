"""The pseudonymiser: sender local parts replaced by a keyed hash (``--pseudonymise``).

HMAC-SHA256 with a random salt kept per database (``lab_settings``), so the same address
hashes the same in every table and joins still work, while the stored rows no longer name
the sender's mailbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any

UTC = dt.timezone.utc
_FROM_KV = re.compile(r"(from=<)([^@<>\s]+)(@[^<>\s]*>)")


class Pseudonymiser:
    """HMAC-SHA256 of sender local parts with a per-database salt (kept in ``lab_settings``)."""

    def __init__(self, salt: bytes | None) -> None:
        self.salt = salt

    @property
    def active(self) -> bool:
        return self.salt is not None

    def local(self, local: str) -> str:
        assert self.salt is not None
        return "h-" + hmac.new(self.salt, local.lower().encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:20]

    def address(self, addr: str | None) -> str | None:
        if not self.active or not addr or "@" not in addr:
            return addr
        local, _, domain = addr.rpartition("@")
        return f"{self.local(local)}@{domain}" if local else addr

    def text(self, text: str) -> str:
        if not self.active or "from=<" not in text:
            return text
        return _FROM_KV.sub(lambda m: m.group(1) + self.local(m.group(2)) + m.group(3), text)


def pseudonymiser_for(store_con: Any, enabled: bool) -> Pseudonymiser:
    """The database's pseudonymiser (its salt made on first use), or an inactive one."""
    if not enabled:
        return Pseudonymiser(None)
    row = store_con.execute("SELECT value FROM lab_settings WHERE key = 'pseudonymise_salt'").fetchone()
    if row is None:
        salt = secrets.token_hex(32)
        store_con.execute("INSERT INTO lab_settings VALUES ('pseudonymise_salt', ?, ?)",
                          [salt, dt.datetime.now(UTC)])
    else:
        salt = row[0]
    return Pseudonymiser(bytes.fromhex(salt))

