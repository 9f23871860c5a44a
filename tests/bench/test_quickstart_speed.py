"""The quickstart through the `rbg` command, cold (empty store) and warm (everything stored),
serial and with `--jobs 2` (issue goal on 2 cores: cold at most 60 s, warm at most 5 s, the
same CSVs as a serial run). Run with --benchmark-enable; the times are printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def rbg(out: Path, cache: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "robustbench_gan", "run", str(ROOT / "suites" / "quickstart.toml"),
         "--out", str(out), "--cache-dir", str(cache), "--jobs", str(jobs), "--no-progress"],
        check=True, capture_output=True, env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    return time.perf_counter() - start


@pytest.mark.benchmark(group="quickstart")
def test_quickstart_cold_and_warm(benchmark, tmp_path):
    if benchmark.disabled:
        pytest.skip("a timing of about 3 minutes: run with --benchmark-enable")
    times = {}

    def all_runs():
        for jobs in (1, 2):
            out, cache = tmp_path / f"out{jobs}", tmp_path / f"cache{jobs}"
            times[f"cold, {jobs} job(s)"] = rbg(out, cache, jobs)
            times[f"warm, {jobs} job(s)"] = rbg(out, cache, jobs)

    benchmark.pedantic(all_runs, rounds=1, iterations=1)
    benchmark.extra_info.update(times)
    print("\n" + "\n".join(f"{k}: {v:.1f} s" for k, v in times.items()))
    for name in ("leaderboard.csv", "transfer.csv", "gan.csv", "samples.csv"):
        serial, pooled = (pd.read_csv(tmp_path / f"out{j}" / name) for j in (1, 2))
        drop = [c for c in serial.columns if c == "seconds"]
        pd.testing.assert_frame_equal(serial.drop(columns=drop), pooled.drop(columns=drop))
