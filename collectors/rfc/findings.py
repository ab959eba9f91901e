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


#: Findings of one code kept per parse; beyond it one summary finding says how many more.
MAX_FINDINGS_PER_CODE = 10


class CappedFindings:
    """Collects findings, keeping at most MAX_FINDINGS_PER_CODE of each code, so that a
    hostile input (thousands of broken fields) cannot blow up a result: garbage in, bounded out."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self.counts: dict[str, int] = {}
        self.severity: dict[str, Severity] = {}

    def add(self, finding: Finding) -> None:
        count = self.counts[finding.code] = self.counts.get(finding.code, 0) + 1
        self.severity[finding.code] = finding.severity
        if count <= MAX_FINDINGS_PER_CODE:
            self.items.append(finding)

    def error(self, code: str, message: str) -> None:
        self.add(Finding.error(code, message))

    def warning(self, code: str, message: str) -> None:
        self.add(Finding.warning(code, message))

    def result(self) -> tuple[Finding, ...]:
        """The kept findings in order, then per capped code one that counts the rest."""
        extra = [Finding(code, self.severity[code], f"... and {n - MAX_FINDINGS_PER_CODE} more like this")
                 for code, n in self.counts.items() if n > MAX_FINDINGS_PER_CODE]
        return tuple(self.items + extra)


def bounded(findings: list[Finding]) -> tuple[Finding, ...]:
    """At most MAX_FINDINGS_PER_CODE findings of each code, then one that counts the rest."""
    capped = CappedFindings()
    for finding in findings:
        capped.add(finding)
    return capped.result()
