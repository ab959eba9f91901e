"""What every lab-evidence parser yields besides its own records: input it could not parse."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quarantined:
    """Input a parser could not use: where it was, its raw bytes, and why. Never dropped."""

    position: str   # line number, byte offset, message index or file name within a folder
    raw: bytes
    reason: str
