"""The rendered report opens in headless Chromium: no console errors, every image
loaded and not blank, on the index and on every page."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from matplotlib import image as mpimg

from report_chromium import Browser, chromium_binary, require_chromium
from collectors.report import NOTEBOOKS

pytestmark = pytest.mark.slow


def _non_blank(png: bytes) -> bool:
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    return float(np.asarray(pixels)[..., :3].std()) > 0.01


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    with Browser() as b:
        yield b


@pytest.mark.parametrize("page", ["index", *NOTEBOOKS])
def test_page_opens_without_errors_and_images_load(synthetic, browser, page):
    out = synthetic["out"]
    browser.open((out / f"{page}.html").as_uri())
    assert browser.errors() == []
    images = browser.evaluate(
        "Array.from(document.images).map(i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0,"
        " natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))")
    assert all(i["ok"] for i in images), [i["src"] for i in images if not i["ok"]]
    # figures are 200 dpi files shown smaller than their pixels (sharp), never wider than the page
    assert all(i["natural"] >= 1000 and i["shown"] <= 1100 for i in images), images
    assert browser.evaluate("document.querySelectorAll('.provenance').length") == 1
    links = browser.evaluate("Array.from(document.links).map(a => a.href).filter(h => h.startsWith('file:'))")
    missing = [h for h in links if not Path(unquote(urlparse(h).path)).exists()]
    assert missing == []
    shot = browser.screenshot()
    assert _non_blank(shot)
    if page != "index":
        figures = list((out / "figures").glob(f"{page}_*.png"))
        assert len(images) == len(figures)
    if page == "index":
        assert len(images) >= 5
        for png in (out / "figures").glob("*.png"):
            assert _non_blank(png.read_bytes()), png.name


def test_chromium_binary_is_debian_chromium():
    require_chromium()
    assert "chromium" in chromium_binary()
