"""spread.py keeps working: three variants of a tiny suite, run and summarized."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).with_name("spread.py")


def test_spread_runs_variants_and_tabulates_them(tmp_path, tiny_suite):
    work = tmp_path / "work"
    base = [sys.executable, str(SCRIPT), str(tiny_suite), "--work", str(work)]
    run = subprocess.run(
        [*base, "--variants", "native,default,seed1", "--jobs", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (work / "tiny").iterdir() if not p.name.startswith(".")) == [
        "default", "native", "seed1",
    ]  # fmt: skip
    summary = subprocess.run([*base, "--summarize"], capture_output=True, text=True, timeout=300)
    assert summary.returncode == 0, summary.stderr
    assert "`rbg reproduce`'s verdict, default against native: every table agrees" in summary.stdout
    spread = pd.read_csv(work / "tiny" / "spread.csv", keep_default_na=False)
    row = spread[(spread["table"] == "leaderboard.csv") & (spread["column"] == "robust_acc")]
    assert len(row) == 1 and float(row["seeds"].iloc[0]) >= 0
    flags = spread[(spread["table"] == "leaderboard.csv") & (spread["column"] == "indicators")]
    assert flags["kernel_paths"].iloc[0].endswith("rows differ")
    bad = subprocess.run([*base, "--variants", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown variant" in bad.stderr
