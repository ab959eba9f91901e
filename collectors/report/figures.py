"""How every report figure looks and is saved: one style, one palette, a footer, three formats.

The palette is Okabe and Ito's (colour-blind safe); the font is DejaVu Sans, which
matplotlib ships, so the same database gives the same bytes on any machine. Each
figure carries a footer naming the run (or month) and, for simulated data, the
words "local simulation", and is written as PNG (200 dpi), SVG and PDF with no
timestamp inside.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.text
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
PALETTE = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
    "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000", "grey": "#999999",
}
CYCLE = [PALETTE[c] for c in ("blue", "orange", "green", "vermillion", "sky", "purple", "black")]
OURS = PALETTE["blue"]
PUBLISHED = PALETTE["grey"]
DPI = 200
FOOTER_SIZE = 7

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "svg.hashsalt": "mtasts-report",    # stable ids inside the SVG
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "legend.frameon": False,
}
# No creation date or producer version inside the files: same database, same bytes.
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def apply_style() -> None:
    """Set the report's matplotlib style for this process."""
    matplotlib.rcParams.update(STYLE)


def wrap(label: str, width: int = 28) -> str:
    """A long category label on several lines instead of cut off."""
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


@dataclass(frozen=True)
class Footer:
    """What the bottom line of every figure says."""

    source: str          # e.g. "crawl run crawl-2026... (2026-11)" or "lab evidence, 2026-11"
    simulation: bool
    citation: str = ""

    def text(self) -> str:
        parts = [self.source]
        if self.simulation:
            parts.append("local simulation: not real domains or providers")
        if self.citation:
            parts.append("published: " + self.citation)
        return wrap(" \u00b7 ".join(parts), 150)


def add_footer(fig: Figure, footer: Footer) -> None:
    """Write the footer under the axes; the figure grows by the footer's height to make room."""
    text = footer.text()
    width, height = fig.get_size_inches()
    extra = (text.count("\n") + 1) * FOOTER_SIZE * 1.35 / 72 + 0.08
    fig.set_size_inches(width, height + extra)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "rect" in engine.get():
        engine.set(rect=(0, extra / (height + extra), 1, 1 - extra / (height + extra)))
    else:
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, 0.0) * height / (height + extra)
                            + extra / (height + extra))
    fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=FOOTER_SIZE,
             color="#444444", gid="report-footer")


def save(fig: Figure, base: Path) -> list[Path]:
    """PNG, SVG and PDF next to ``base`` (no suffix); returns the files."""
    out = []
    for fmt in ("png", "svg", "pdf"):
        path = base.with_suffix(f".{fmt}")
        fig.savefig(path, format=fmt, dpi=DPI, bbox_inches="tight", pad_inches=0.08,
                    metadata=_METADATA[fmt])
        out.append(path)
    return out


def empty_axes(fig: Figure) -> list[str]:
    """Titles (or indices) of axes that hold no data: no bar, line, point or image."""
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        if not _holds_data(ax):
            out.append(ax.get_title() or f"axes {i}")
    return out


def _holds_data(ax: Any) -> bool:
    for line in ax.lines:
        if len(line.get_xdata()) and len(line.get_ydata()):
            return True
    for patch in ax.patches:
        if patch.get_width() != 0 or patch.get_height() != 0:
            return True
    for coll in ax.collections:
        if len(getattr(coll, "get_offsets", lambda: [])()) or len(coll.get_paths()):
            return True
    return bool(ax.images)


def cut_texts(fig: Figure) -> list[str]:
    """Visible texts (ticks, labels, titles, legends, annotations, footer) that reach
    outside the figure's canvas, or tick labels that overlap their neighbours."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bounds = fig.bbox
    ticks = {id(t) for ax in fig.axes for t in [*ax.get_xticklabels(which="both"), *ax.get_yticklabels(which="both")]}
    shown_ticks = [t for ax in fig.axes for t in _drawn_ticks(ax)]
    out = []
    for text in [*(t for t in fig.findobj(matplotlib.text.Text) if id(t) not in ticks), *shown_ticks]:
        if not text.get_visible() or not text.get_text().strip():
            continue
        box = text.get_window_extent(renderer)
        if box.width == 0:
            continue
        if (box.x0 < bounds.x0 - 1 or box.x1 > bounds.x1 + 1 or box.y0 < bounds.y0 - 1
                or box.y1 > bounds.y1 + 1):
            out.append(text.get_text())
    out += _colliding_labels(fig, renderer)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            shown = [t for t in _drawn_ticks(ax, axis) if t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in shown]
            out += [f"overlapping ticks {shown[i].get_text()!r}" for i in range(1, len(boxes))
                    if boxes[i].overlaps(boxes[i - 1])]
    return out


def _drawn_ticks(ax: Any, axis: Any = None) -> list[Any]:
    """The tick labels matplotlib draws: visible, and at a location inside the view limits."""
    out = []
    for ax_ in ([axis] if axis is not None else [ax.xaxis, ax.yaxis]):
        low, high = sorted(ax_.get_view_interval())
        for tick in ax_.get_major_ticks():
            if tick.label1.get_visible() and low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                out.append(tick.label1)
    return out


def _colliding_labels(fig: Figure, renderer: Any) -> list[str]:
    """Titles, axis labels, legends and the footer that overlap one another."""
    items = [("suptitle", fig._suptitle)] if fig._suptitle is not None else []
    for i, ax in enumerate(fig.axes):
        items += [(f"axes {i} title", ax.title), (f"axes {i} x label", ax.xaxis.label),
                  (f"axes {i} y label", ax.yaxis.label)]
        if ax.get_legend() is not None:
            items.append((f"axes {i} legend", ax.get_legend()))
    items += [("footer", t) for t in fig.texts if t.get_gid() == "report-footer"]
    boxes = [(name, a.get_window_extent(renderer)) for name, a in items
             if a.get_visible() and (not hasattr(a, "get_text") or a.get_text().strip())]
    return [f"{a} overlaps {b}" for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


def legend_without_artist(fig: Figure) -> list[str]:
    """Legend entries naming something the axes do not draw."""
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        drawn = {a.get_label() for a in [*ax.lines, *ax.patches, *ax.collections, *ax.containers]}
        out += [t.get_text() for t in legend.get_texts() if t.get_text() not in drawn]
    return out


def review(fig: Figure) -> dict[str, Any]:
    """What a reviewer checks on a figure, as data: axes with and without data, cut or
    colliding texts, legend entries without an artist, and the footer's words."""
    return {
        "axes_with_data": sum(1 for ax in fig.axes if ax.axison and _holds_data(ax)),
        "empty_axes": empty_axes(fig),
        "cut_or_colliding_texts": cut_texts(fig),
        "legend_without_artist": legend_without_artist(fig),
        "footer": " ".join(t.get_text() for t in fig.texts if t.get_gid() == "report-footer"),
        "size_inches": [round(float(v), 2) for v in fig.get_size_inches()],
    }


def new(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` in the report's style (constrained layout)."""
    apply_style()
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)
