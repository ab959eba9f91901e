"""Render the lab's configuration templates (``lab/`` at the repository root).

Templates use ``{{ name }}`` placeholders, because Postfix and nginx both give ``$name``
a meaning of their own. A placeholder without a value is an error, never left in a
rendered file, and a value that is not used is an error too (a typo in a name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from collectors import REPO_ROOT

TEMPLATE_DIR = REPO_ROOT / "lab"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    """A template names a value that was not given, or was given one it does not use."""


def placeholders(text: str) -> set[str]:
    """Every placeholder name in a template."""
    return set(_PLACEHOLDER.findall(text))


def render_text(text: str, values: Mapping[str, object], *, source: str = "template",
                strict_unused: bool = True) -> str:
    """``text`` with each ``{{ name }}`` replaced by ``str(values[name])``."""
    names = placeholders(text)
    missing = sorted(names - set(values))
    if missing:
        raise TemplateError(f"{source}: no value for {', '.join(missing)}")
    unused = sorted(set(values) - names)
    if strict_unused and unused:
        raise TemplateError(f"{source}: values not used: {', '.join(unused)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def template_path(relative: str) -> Path:
    return TEMPLATE_DIR / relative


def render(relative: str, values: Mapping[str, object], *, strict_unused: bool = False) -> str:
    """Render ``lab/<relative>`` with ``values`` (extra values allowed unless strict)."""
    path = template_path(relative)
    return render_text(path.read_text(), values, source=f"lab/{relative}", strict_unused=strict_unused)
