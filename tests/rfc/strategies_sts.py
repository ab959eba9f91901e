"""Hypothesis strategies for RFC 8461: valid TXT records and policies built from the ABNF, with their values.

Each strategy draws the parts first and returns them beside the text, so a
property can check that parsing gives back exactly what was generated.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from hypothesis import strategies as st

ALNUM = string.ascii_letters + string.digits
WSP = st.text(alphabet=" \t", max_size=3)

# --- the TXT record (section 3.1) -------------------------------------------------------

sts_ids = st.text(alphabet=ALNUM, min_size=1, max_size=32)
ext_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "_-.", max_size=31),
).filter(lambda name: name.lower() not in ("id", "v"))
# sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
ext_value_chars = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "=;")
ext_values = st.text(alphabet=ext_value_chars, min_size=1, max_size=40)


@dataclass(frozen=True)
class GeneratedRecord:
    strings: tuple[str, ...]  # the TXT record's character-strings
    id: str
    extensions: dict[str, str]

    @property
    def joined(self) -> str:
        return "".join(self.strings)


def _separator(draw: st.DrawFn) -> str:
    return draw(WSP) + ";" + draw(WSP)


@st.composite
def valid_records(draw: st.DrawFn) -> GeneratedRecord:
    """``sts-version 1*(sts-sep sts-field) [sts-sep]`` with one id and unique extensions, split into strings."""
    record_id = draw(sts_ids)
    extensions = draw(st.dictionaries(ext_names, ext_values, max_size=3))
    fields = [f"id={record_id}"] + [f"{k}={v}" for k, v in extensions.items()]
    fields = draw(st.permutations(fields))
    text = "v=STSv1"
    for item in fields:
        text += _separator(draw) + item
    if draw(st.booleans()):
        text += _separator(draw)
    # A TXT record's strings are at most 255 octets; cut anywhere, the join must not care.
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=3)))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return GeneratedRecord(tuple(p for p in pieces if p), record_id, extensions)


# --- the policy (section 3.2) -----------------------------------------------------------

_LDH = string.ascii_lowercase + string.digits + "-"


@st.composite
def labels(draw: st.DrawFn, max_size: int = 20) -> str:
    """One RFC 5321 sub-domain: letter or digit, then LDH, not ending with a hyphen."""
    middle = draw(st.text(alphabet=_LDH, max_size=max_size - 2))
    first = draw(st.sampled_from(string.ascii_lowercase + string.digits))
    last = draw(st.sampled_from(string.ascii_lowercase + string.digits)) if middle or draw(st.booleans()) else ""
    label = first + middle + last
    if draw(st.booleans()):
        label = label.upper() if draw(st.booleans()) else label
    return label


@st.composite
def domains(draw: st.DrawFn, min_labels: int = 2) -> str:
    """A Domain of 2 to 4 labels whose top-level label has a letter (so it is no IPv4 address)."""
    inner = draw(st.lists(labels(), min_size=min_labels - 1, max_size=3))
    tld = draw(st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6))
    return ".".join([*inner, tld])


mx_patterns = st.builds(lambda wild, name: ("*." if wild else "") + name, st.booleans(), domains())

_KNOWN = {"version", "mode", "max_age", "mx"}
policy_ext_names = ext_names.filter(
    lambda n: n.lower().replace("-", "_").replace(".", "_") not in _KNOWN | {"maxage", "mxs", "versions", "modes"}
    and n.lower().replace("-", "").replace(".", "").replace("_", "") not in {"maxage"}
)
# sts-policy-ext-value: vchar [*(SP / vchar) vchar], vchar = %x21-7E / UTF-8
_vchar = st.one_of(
    st.sampled_from([chr(c) for c in range(0x21, 0x7F)]),
    st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Zl", "Zp")),
)
policy_ext_values = st.one_of(
    _vchar,
    st.builds(
        lambda first, middle, last: first + middle + last,
        _vchar,
        st.lists(st.one_of(_vchar, st.just(" ")), max_size=20).map("".join),
        _vchar,
    ),
)


@dataclass(frozen=True)
class GeneratedPolicy:
    text: str
    mode: str
    max_age: int
    mx: tuple[str, ...]
    extensions: dict[str, str]
    line_ending: str | None
    lines: tuple[tuple[str, str], ...]  # (field name, whole line without terminator)


@st.composite
def valid_policies(draw: st.DrawFn) -> GeneratedPolicy:
    """``sts-policy-record``: fields in any order, LF or CRLF, WSP after ':' and at line ends."""
    mode = draw(st.sampled_from(["enforce", "testing", "none"]))
    max_age = draw(st.integers(0, 31557600))
    mx = draw(st.lists(mx_patterns, min_size=0 if mode == "none" else 1, max_size=4, unique=True))
    extensions = draw(st.dictionaries(policy_ext_names, policy_ext_values, max_size=2))
    digits = str(max_age).zfill(draw(st.integers(len(str(max_age)), 10)))
    fields = [("version", "STSv1"), ("mode", mode), ("max_age", digits)]
    fields += [("mx", m) for m in mx] + list(extensions.items())
    fields = draw(st.permutations(fields))
    lines = tuple((name, f"{name}:{draw(WSP)}{value}{draw(WSP)}") for name, value in fields)
    ending = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    terminators = [
        draw(st.sampled_from(["\n", "\r\n"])) if ending == "mixed" else ending for _ in lines
    ]
    final = draw(st.booleans())
    text = ""
    for index, (_, line) in enumerate(lines):
        text += line
        if index < len(lines) - 1 or final:
            text += terminators[index]
    used = terminators if final else terminators[:-1]
    if not used:
        line_ending = None
    elif all(t == "\n" for t in used):
        line_ending = "LF"
    elif all(t == "\r\n" for t in used):
        line_ending = "CRLF"
    else:
        line_ending = "mixed"
    in_order = tuple(value for name, value in fields if name == "mx")
    return GeneratedPolicy(text, mode, max_age, in_order, extensions, line_ending, lines)


def render(lines: list[str] | tuple[str, ...], ending: str = "\n") -> str:
    return "".join(line + ending for line in lines)
