"""`--jobs N`: cells in parallel worker processes give the serial run's tables bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from robustbench_gan.errors import UserError
from robustbench_gan.runner.pool import core_shares, ready
from robustbench_gan.runner.run import run_suite

TIMINGS = ["seconds"]


def tables(out):
    return {p.name: pd.read_csv(p) for p in sorted(out.glob("*.csv"))}


def test_two_jobs_give_the_serial_tables(tmp_path, tiny_suite):
    serial = run_suite(tiny_suite, out=tmp_path / "a", cache_dir=tmp_path / "ca", progress=False)
    pooled = run_suite(
        tiny_suite, out=tmp_path / "b", cache_dir=tmp_path / "cb", progress=False, jobs=2
    )
    assert pooled.counts["run"] == serial.counts["run"] > 0
    a, b = tables(tmp_path / "a"), tables(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        drop = [c for c in TIMINGS if c in a[name].columns]
        pd.testing.assert_frame_equal(a[name].drop(columns=drop), b[name].drop(columns=drop),
                                      check_exact=True, obj=name)  # fmt: skip
    again = run_suite(
        tiny_suite, out=tmp_path / "b", cache_dir=tmp_path / "cb", progress=False, jobs=2
    )
    assert again.counts["run"] == 0  # a warm run starts no worker


def test_a_failing_cell_stops_the_run_with_its_error(tmp_path, tiny_suite):
    (tmp_path / "broken.py").write_text(
        "from robustbench_gan.attacks.base import Attack\n\n"
        "class Broken(Attack):\n"
        '    """Fails on purpose."""\n'
        "    def perturb(self, model, x, y, eps, target_class):\n"
        "        return x[:, :, :2]\n"
    )
    tiny_suite.write_text(tiny_suite.read_text() + '[[attacks]]\nname = "broken:Broken"\n')
    with pytest.raises(UserError, match="Broken"):
        run_suite(tiny_suite, out=tmp_path / "o", cache_dir=tmp_path / "c", progress=False, jobs=2)


def test_jobs_are_checked():
    with pytest.raises(UserError, match="--jobs"):
        run_suite("suites/smoke.toml", jobs=0)


def test_cores_are_dealt_out_and_cells_wait_for_their_upstream():
    shares = core_shares(3)
    assert len(shares) == 3 and all(shares)

    class C:
        def __init__(self, id, deps=()):
            self.id, self.deps = id, tuple(deps)

    a, b, c = C("a"), C("b", ["a"]), C("c")
    assert [x.id for x in ready({"a": a, "b": b, "c": c}, {})] == ["a", "c"]
    assert ready({"b": b}, {object(): a}) == []
    assert ready({"b": b}, {}) == [b]


def read(path: Path) -> str:
    """A /proc file, or nothing for a process that ended meanwhile."""
    try:
        return path.read_text(errors="ignore")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_workers_end_when_the_run_is_killed(tmp_path, tiny_suite):
    """A kill -9 of `rbg run` leaves no worker waiting for work forever."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustbench_gan", "run", str(tiny_suite), "--jobs", "2",
         "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        workers = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and
            f"\nPPid:\t{proc.pid}\n" in read(p / "status") and "spawn_main" in read(p / "cmdline")
        ]  # fmt: skip
    if proc.poll() is not None:
        pytest.skip("the run ended before its workers could be seen")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not any(alive(w) for w in workers)
