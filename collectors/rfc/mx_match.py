"""Does an MX host name match a policy's ``mx`` patterns (RFC 8461 section 4.1), and if not, why?

Section 4.1: an MX host is valid when it matches one of the policy's ``mx``
patterns. A pattern is a domain name or ``*.`` followed by one; the wildcard
stands for exactly one left-most label, so ``*.example.com`` matches
``mail.example.com`` but neither ``example.com`` nor ``foo.bar.example.com``.
Names compare case-insensitively (DNS names, RFC 4343), a trailing root dot is
ignored on either side, and internationalised names compare as A-labels
(RFC 5890; U-labels are converted with the ``idna`` package, UTS 46 mapping).
A name that cannot be converted matches nothing. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import idna

MismatchClass = Literal["wrong_tld", "wrong_domain", "extra_label", "typo", "mta_sts_in_pattern", "other"]

WILDCARD = "*."
#: Edit distance up to which an uncovered MX host counts as a typo of a pattern.
TYPO_DISTANCE = 3
# Second-level labels under which country-code registries sell names ("example.co.uk");
# a heuristic for "the public suffix", which this pure module does not load a list for.
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "go", "ne", "net", "or", "org", "gv", "ltd", "plc"})


def mx_matches(mx_host: str, patterns: Iterable[str]) -> bool:
    """True when ``mx_host`` matches one of ``patterns`` (RFC 8461 section 4.1)."""
    host = normalize_name(mx_host)
    if host is None:
        return False
    try:
        candidates = list(patterns)
    except Exception:
        return False
    for pattern in candidates:
        wildcard, base = _split_pattern(pattern)
        if base is None:
            continue
        if not wildcard:
            if host == base:
                return True
            continue
        first, dot, parent = host.partition(".")
        if dot and first and parent == base:
            return True
    return False


def normalize_name(name: object) -> str | None:
    """``name`` as lower-case A-labels without the trailing dot, or None when it is no usable name."""
    if not isinstance(name, str):
        return None
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return None
    if not text.isascii():
        try:
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
            text = ".".join(
                label if label.isascii() else idna.alabel(label).decode("ascii")
                for label in text.split(".")
            )
        except (idna.IDNAError, UnicodeError, ValueError, IndexError):
            return None
    text = text.lower()
    if "" in text.split("."):
        return None  # an empty label ("a..b", ".example.com") names no host
    return text


def _split_pattern(pattern: object) -> tuple[bool, str | None]:
    """(is wildcard, normalised base name) of one ``mx`` pattern; base None when unusable."""
    if not isinstance(pattern, str):
        return False, None
    text = pattern.strip()
    if text.startswith(WILDCARD):
        base = normalize_name(text[len(WILDCARD):])
        if base is None or "*" in base:
            return True, None
        return True, base
    base = normalize_name(text)
    if base is None or "*" in base:
        return False, None
    return False, base


def classify_mismatch(mx_host: str, patterns: Iterable[str]) -> MismatchClass:
    """Why ``mx_host`` is not covered by ``patterns``: the first class that applies, in this order.

    * ``extra_label``: a pattern covers a parent or child of the host, one or more labels
      off (``a.b.example.com`` under ``*.example.com``; ``example.com`` under ``*.example.com``;
      ``mx.mail.example.com`` against ``mail.example.com``).
    * ``wrong_tld``: the names agree except in the top-level domain / public suffix
      (``mail.example.com`` against ``mail.example.net`` or ``mail.example.co.uk``).
    * ``typo``: within edit distance 3 of a pattern (a wildcard taken as the host's
      first label).
    * ``mta_sts_in_pattern``: a pattern names the policy host ``mta-sts.<domain>``
      instead of a mail server.
    * ``wrong_domain``: no pattern is in the host's registered domain (the MX moved to
      another provider, or the policy was copied from another domain).
    * ``other``: a pattern is in the host's domain but names a different host; also
      returned when the host does match (call this only for uncovered hosts) or is no name.
    """
    host = normalize_name(mx_host)
    try:
        raw_patterns = list(patterns)
    except Exception:
        return "other"
    parsed = [(w, b) for w, b in (_split_pattern(p) for p in raw_patterns) if b is not None]
    if host is None or not parsed or mx_matches(host, [(WILDCARD if w else "") + b for w, b in parsed]):
        return "other"
    host_labels = host.split(".")

    for wildcard, base in parsed:
        if _extra_label(host, wildcard, base):
            return "extra_label"
    for wildcard, base in parsed:
        if _differs_in_tld(host_labels, _expand(host_labels, wildcard, base)):
            return "wrong_tld"
    for wildcard, base in parsed:
        if _within_distance(host, ".".join(_expand(host_labels, wildcard, base)), TYPO_DISTANCE):
            return "typo"
    for _, base in parsed:
        if any(label in ("mta-sts", "_mta-sts") for label in base.split(".")):
            return "mta_sts_in_pattern"
    host_domain = _registered_domain(host_labels)
    if all(_registered_domain(base.split(".")) != host_domain for _, base in parsed):
        return "wrong_domain"
    return "other"


def _extra_label(host: str, wildcard: bool, base: str) -> bool:
    if wildcard:
        # "*.example.com" covers exactly one more label: the apex or two-plus more are off by one.
        return host == base or host.endswith("." + base)
    return host.endswith("." + base) or base.endswith("." + host)


def _expand(host_labels: list[str], wildcard: bool, base: str) -> list[str]:
    """The pattern's labels, its wildcard replaced by the host's first label."""
    labels = base.split(".")
    return [host_labels[0], *labels] if wildcard else labels


def _suffix_length(labels: list[str]) -> int:
    """Labels in the public suffix, by heuristic: ``co.uk``-style pairs count two."""
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return 2
    return 1


def _registered_domain(labels: list[str]) -> tuple[str, ...]:
    return tuple(labels[-(_suffix_length(labels) + 1):])


def _differs_in_tld(host_labels: list[str], pattern_labels: list[str]) -> bool:
    host_cut, pattern_cut = _suffix_length(host_labels), _suffix_length(pattern_labels)
    host_stem, pattern_stem = host_labels[:-host_cut], pattern_labels[:-pattern_cut]
    return (bool(host_stem) and host_stem == pattern_stem
            and host_labels[-host_cut:] != pattern_labels[-pattern_cut:])


def _within_distance(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of ``a`` and ``b`` at most ``limit`` (banded: linear in the length)."""
    if abs(len(a) - len(b)) > limit:
        return False
    if a == b:
        return True
    big = limit + 1
    previous = {j: j for j in range(0, min(len(b), limit) + 1)}
    for i in range(1, len(a) + 1):
        current: dict[int, int] = {}
        if i <= limit:
            current[0] = i
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(
                previous.get(j, big) + 1,
                current.get(j - 1, big) + 1,
                previous.get(j - 1, big) + cost,
            )
        if min(current.values(), default=big) > limit:
            return False
        previous = current
    return previous.get(len(b), big) <= limit
