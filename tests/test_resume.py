"""Nothing is lost on a crash: kill -9 mid-run, run again, get the uninterrupted CSVs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from robustbench_gan.errors import UserError
from robustbench_gan.runner.lock import LOCK_NAME, run_lock
from robustbench_gan.runner.run import prepare, run_suite

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.toml"
TABLES = ("leaderboard.csv", "transfer.csv", "ensemble.csv", "gan.csv")


def finished_cells(cache: Path) -> int:
    try:
        with sqlite3.connect(cache / "store.sqlite", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.Error:
        return 0


def rbg_run(out: Path, cache: Path) -> subprocess.Popen:
    args = ["run", str(SMOKE), "--out", str(out), "--cache-dir", str(cache), "--no-progress"]
    return subprocess.Popen(
        [sys.executable, "-m", "robustbench_gan", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_9_and_resume_gives_the_uninterrupted_tables(tmp_path):
    whole = run_suite(
        SMOKE,
        out=tmp_path / "whole",
        cache_dir=tmp_path / "whole_cache",
        device="cpu",
        progress=False,
    )
    total = whole.counts["run"]

    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = rbg_run(out, cache)
    deadline = time.monotonic() + 120
    while (
        finished_cells(cache) < total // 3 and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = finished_cells(cache)
    assert 0 < done < total
    assert not (out / "leaderboard.csv").exists()  # outputs only appear at the end

    again = run_suite(SMOKE, out=out, cache_dir=cache, device="cpu", progress=False)
    assert again.counts["cached"] >= done and again.counts["run"] == total - again.counts["cached"]
    assert finished_cells(cache) == total  # one row per cell, no duplicates
    for name in TABLES:
        resumed = pd.read_csv(out / name).drop(columns=["seconds"], errors="ignore")
        expected = pd.read_csv(tmp_path / "whole" / name).drop(columns=["seconds"], errors="ignore")
        pd.testing.assert_frame_equal(resumed, expected, check_exact=True)
    board = pd.read_csv(out / "leaderboard.csv")
    assert not board.duplicated(["target", "defense", "attack", "eps"]).any()


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "out"
    with run_lock(out):
        with pytest.raises(
            UserError, match=f"another rbg run \\(pid {os.getpid()}\\) is writing to"
        ):
            run_suite(SMOKE, out=out, cache_dir=tmp_path / "cache", device="cpu", progress=False)


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (out / LOCK_NAME).write_text(dead.stdout.strip())  # a file, but no process holds its lock
    _, _, plan = prepare(SMOKE, None)
    summary = run_suite(SMOKE, out=out, cache_dir=tmp_path / "cache", device="cpu", progress=False)
    assert summary.counts["run"] == len(plan.cells)
    assert not (out / LOCK_NAME).exists()  # the run removed its lock when it ended


def test_the_lock_holds_the_pid_and_is_removed_after(tmp_path):
    out = tmp_path / "out"
    with run_lock(out):
        assert (out / LOCK_NAME).read_text() == str(os.getpid())
    assert not (out / LOCK_NAME).exists()
    with pytest.raises(RuntimeError), run_lock(out):
        raise RuntimeError("a failing run")
    assert not (out / LOCK_NAME).exists()


def test_force_recomputes_the_cells_it_names(tmp_path, tiny_suite):
    """--force PATTERN reruns matching cells even when cached; the tables stay the same."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False)
    again = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False, force="train mlp")
    assert again.counts["run"] == 1 and again.counts["cached"] == first.counts["run"] - 1
    everything = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False, force="*")
    assert everything.counts["run"] == first.counts["run"] and everything.counts["cached"] == 0
    timing = ["seconds"]
    pd.testing.assert_frame_equal(
        first.tables["leaderboard"].drop(columns=timing),
        everything.tables["leaderboard"].drop(columns=timing),
    )


def test_a_staging_folder_left_by_a_killed_run_is_removed(tmp_path, tiny_suite):
    out = tmp_path / "out"
    stale = out / ".partial-abc123"
    (stale / "plots").mkdir(parents=True)
    (stale / "leaderboard.csv").write_text("half")
    run_suite(tiny_suite, out=out, cache_dir=tmp_path / "cache", progress=False)
    assert not list(out.glob(".partial-*")) and (out / "leaderboard.csv").is_file()


def test_the_store_checks_its_rows(tmp_path, tiny_suite, capsys):
    """An edited number or broken JSON in a row is noticed and recomputed; the tables come
    out as before. A store file that is not a database is one line naming it."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False)
    db = sqlite3.connect(cache / "store.sqlite")
    (cell_id, result), (other, _) = db.execute(
        "SELECT id, result FROM cells WHERE kind = 'attack' LIMIT 2"
    ).fetchall()
    edited = result.replace('"robust_acc": 0', '"robust_acc": 1', 1)
    assert edited != result
    db.execute("UPDATE cells SET result = ? WHERE id = ?", (edited, cell_id))
    db.execute("UPDATE cells SET result = '{not json' WHERE id = ?", (other,))
    db.commit()
    db.close()
    again = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False)
    err = capsys.readouterr().err
    assert f"cell {cell_id} is corrupt (its checksum does not match)" in err
    assert f"cell {other} is corrupt" in err and again.counts["run"] == 2
    timing = ["seconds"]
    pd.testing.assert_frame_equal(
        first.tables["leaderboard"].drop(columns=timing),
        again.tables["leaderboard"].drop(columns=timing),
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(UserError, match="store.sqlite is not a readable result store"):
        run_suite(tiny_suite, out=tmp_path / "o2", cache_dir=bad, progress=False)
