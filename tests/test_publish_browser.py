"""The published HTML leaderboard opens in a real browser (headless Chromium): it renders a
page that is not blank and its ranked tables are in the DOM. Skips only without a browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from committed import committed
from PIL import Image

from robustbench_gan.publish.leaderboards import publish

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = committed("quickstart")
BROWSER = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium or google-chrome binary")


def headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The browser, headless, as root too (no sandbox), with a profile of its own."""
    command = [
        str(BROWSER), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("published")
    publish(QUICKSTART, results)
    return results / "digits-linf.html"


def test_the_page_renders(page, tmp_path):
    shot = tmp_path / "shot.png"
    proc = headless(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1200, 900)
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, the picture's colours: not a blank or error page
    assert (pixels.min(axis=2) < 200).mean() > 0.01  # some ink on the page


def test_the_ranked_tables_are_in_the_dom(page, tmp_path):
    proc = headless(tmp_path, "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert "<table>" in dom, proc.stderr[-2000:]
    tables = dom.count("<table>")
    assert tables == 4  # one protocol, four budgets
    assert dom.count("<tr") == tables * 7  # a header and six models each
    assert "small_cnn [fgsm_at]" in dom and 'src="data:image/png;base64,' in dom
    assert "<title>digits, linf leaderboard</title>" in dom
