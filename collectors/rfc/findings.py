"""Findings: what a parser noticed about its input, as values, never exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about an input: a stable machine ``code``, a severity and a human message."""

    code: str
    severity: Severity
    message: str

    @classmethod
    def error(cls, code: str, message: str) -> "Finding":
        return cls(code, "error", message)

    @classmethod
    def warning(cls, code: str, message: str) -> "Finding":
        return cls(code, "warning", message)


def has_errors(findings: list[Finding] | tuple[Finding, ...]) -> bool:
    """True when any finding is an error (the input is not usable)."""
    return any(f.severity == "error" for f in findings)
