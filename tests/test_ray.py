"""The Ray executor on a local instance gives the local executor's CSVs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from robustbench_gan.runner.run import run_suite

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.toml"


@pytest.mark.slow
def test_ray_executor_matches_the_local_executor(tmp_path):
    local = run_suite(
        SMOKE, out=tmp_path / "local", cache_dir=tmp_path / "c1", device="cpu", progress=False
    )
    remote = run_suite(
        SMOKE,
        out=tmp_path / "ray",
        cache_dir=tmp_path / "c2",
        device="cpu",
        progress=False,
        executor="ray",
        workers=2,
    )
    assert remote.counts == local.counts
    for name in (
        "leaderboard.csv",
        "transfer.csv",
        "ensemble.csv",
        "gan.csv",
        "curves_iterations.csv",
    ):
        a = pd.read_csv(tmp_path / "local" / name).drop(columns=["seconds"], errors="ignore")
        b = pd.read_csv(tmp_path / "ray" / name).drop(columns=["seconds"], errors="ignore")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    again = run_suite(
        SMOKE,
        out=tmp_path / "ray",
        cache_dir=tmp_path / "c2",
        device="cpu",
        progress=False,
        executor="ray",
        workers=2,
    )
    assert again.counts["run"] == 0  # the store the tasks wrote is the one the next run reads


def test_unknown_executor_is_a_user_error(tmp_path):
    from robustbench_gan.errors import UserError

    with pytest.raises(UserError, match="--executor must be one of local, ray"):
        run_suite(SMOKE, out=tmp_path, cache_dir=tmp_path / "c", executor="dask")
