"""The runner's leftovers and `rbg report`'s bad inputs: a `--jobs` run killed with kill -9
leaves its context file only until the next run; `rbg report` writes nothing to a store, says
which stored result is unusable instead of claiming to recompute it, renders an `rbg eval`
folder, and `rbg eval`'s errors name the options given, never the suite built from them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

import robustbench_gan
from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.runner.pool import (
    CONTEXT,
    driver_gone,
    host_id,
    legacy_stale,
    proc_stat,
    start_ticks,
    sweep_stale,
)
from robustbench_gan.runner.store import Store

HAS_PROC = Path("/proc/self/stat").is_file()
SLOW = '''
import time

from robustbench_gan.attacks.base import Attack


class Slow(Attack):
    """Waits (a run that lasts), then gives the images back as they are."""

    def perturb(self, model, x, y, eps, target_class):
        time.sleep(600)
        return x
'''
SLOW_SUITE = """
name = "slow"
[dataset]
name = "digits"
max_train = 100
max_test = 20
[train]
epochs = 1
[eval]
eps = [0.1]
[[targets]]
name = "mlp"
hidden = 8
[[attacks]]
name = "slow:Slow"
"""


def one_line_error(capsys, args: list[str]) -> str:
    """Run `rbg ARGS`: exit 2 and one line on stderr, `rbg: error: ...`; returns it."""
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rbg: error: "), err
    assert "Traceback" not in err
    return lines[0]


def files(folder: Path) -> list[tuple[str, int]]:
    """Every path under ``folder`` with its modification time (nothing when absent)."""
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


# -- defect 10: the context file of a `--jobs` run killed with kill -9 -------------------------
def wait_until(found, proc: subprocess.Popen, log: Path, timeout: float = 300.0):
    """Poll ``found()`` until it gives something; the run must still be running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    pytest.fail(f"gave up waiting after {timeout:.0f} s: {log.read_text()}")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (those that end meanwhile are left out)."""
    stats = {e.name: proc_stat(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()}
    return [int(name) for name, fields in stats.items() if fields and int(fields[1]) == pid]


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split()[0] in ("Z", "X")


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc")
def test_a_killed_run_leaves_its_context_only_until_the_next_run(tmp_path, monkeypatch):
    (tmp_path / "slow.py").write_text(SLOW)
    suite = tmp_path / "slow.toml"
    suite.write_text(SLOW_SUITE)
    cache, tmpdir = tmp_path / "cache", tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))  # this process's sweeps look there
    started: list[subprocess.Popen] = []

    def start(name: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "robustbench_gan", "run", str(suite), "--jobs", "2",
                 "--out", str(tmp_path / name), "--cache-dir", str(cache), "--no-progress"],
                stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                env={**os.environ, "TMPDIR": str(tmpdir)},
            )  # fmt: skip
        started.append(proc)
        return proc, log

    def context_of(proc: subprocess.Popen) -> Path | None:
        for folder in (cache / "tmp").glob(f"jobs-*-{proc.pid}-*"):
            if (folder / CONTEXT).exists():
                return folder / CONTEXT
        return None

    def kill(proc: subprocess.Popen) -> None:
        workers = children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60  # its workers end by themselves
        while not all(gone(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)

    try:
        first, log = start("a")
        context = wait_until(lambda: context_of(first), first, log)
        kill(first)
        assert context.is_file()  # kill -9: nobody removed it

        second, log = start("b")
        live = wait_until(lambda: context_of(second), second, log)
        assert not context.parent.exists()  # its driver is gone: the next run removed it
        Store(cache).close()  # another run opens the store meanwhile
        assert live.is_file() and second.poll() is None  # a running driver's is kept
        assert list(tmpdir.glob("rbg-jobs-*")) == []  # nothing in $TMPDIR any more

        kill(second)
        Store(cache).close()
        assert list((cache / "tmp").iterdir()) == []
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc")
def test_a_jobs_folder_is_judged_by_its_drivers_pid_start_time_and_host():
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        pid, start = sleeper.pid, start_ticks(sleeper.pid)
        assert start > 0
        assert not driver_gone(f"jobs-{host_id()}-{pid}-{start}-abc_123x")
        assert driver_gone(f"jobs-{host_id()}-{pid}-{start + 1}-abc_123x")  # a reused pid
        assert not driver_gone(f"jobs-0000beef-{pid}-{start + 1}-abc_123x")  # another machine
        assert not driver_gone("jobs-something-else")  # not named by a driver: left alone
    finally:
        sleeper.kill()
        sleeper.wait()
    assert driver_gone(f"jobs-{host_id()}-{pid}-{start}-abc_123x")


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc")
def test_old_style_folders_in_tmpdir_are_removed_once_no_pool_can_use_them(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before_boot, fresh, old = (tmp_path / f"rbg-jobs-{n}" for n in ("boot", "fresh", "old"))
    for folder in (before_boot, fresh, old):
        folder.mkdir()
        (folder / CONTEXT).write_bytes(b"data")
    os.utime(before_boot / CONTEXT, (1e9, 1e9))  # 2001: before this boot
    now = time.time()
    os.utime(old / CONTEXT, (now - 7200, now - 7200))
    assert not legacy_stale(fresh, [])  # maybe in the making
    assert legacy_stale(old, [])  # no pool runs
    assert not legacy_stale(old, [(now - 3600, now - 9000)])  # a pool made after it, maybe its
    assert legacy_stale(old, [(now - 3600, now - 3700)])  # that pool's driver started after it
    assert not legacy_stale(old, None)  # unknown (no /proc): kept
    sweep_stale(tmp_path / "cache")  # (the pools of this machine decide for the old one)
    assert not before_boot.exists() and fresh.exists()


# -- defect 11: `rbg report` ----------------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path, tiny_suite):
    """A finished run of the tiny suite: its folder and store."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["run", str(tiny_suite), "--out", str(out), "--cache-dir", str(cache),
                 "--no-progress"]) == 0  # fmt: skip
    return out, cache


def test_report_writes_nothing_in_a_store(finished_run, tmp_path, capsys):
    out, cache = finished_run
    absent, empty = tmp_path / "absent", tmp_path / "empty"
    empty.mkdir()
    for store in (absent, empty):
        line = one_line_error(capsys, ["report", str(out), "--cache-dir", str(store)])
        assert "no stored result" in line and "recomputing" not in line
    assert not absent.exists() and list(empty.iterdir()) == []
    before = files(cache)
    assert main(["report", str(out)]) == 0
    assert files(cache) == before  # no -wal or -shm file left behind either
    shutil.rmtree(cache / "plots")  # plots drawn anew (another plot code) stay out of it too
    before = files(cache)
    assert main(["report", str(out)]) == 0
    assert files(cache) == before and list((out / "plots").glob("*.png"))


def test_report_names_a_missing_artifact_and_recomputes_nothing(finished_run, capsys):
    out, cache = finished_run
    artifact = next(p for p in (cache / "artifacts").rglob("*") if p.is_file())
    artifact.unlink()
    line = one_line_error(capsys, ["report", str(out)])
    assert "recomputing" not in line and artifact.name in line and "is missing" in line
    assert "lacks its artifact" in line and "rerun `rbg run" in line
    assert not artifact.exists()


NET = '''
from torch import nn


class Net(nn.Module):
    """A plain module, images in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.body(x)
'''
EVAL = ["eval", "--dataset", "digits", "--eps", "0.1", "--n", "20", "--attacks", "fgsm",
        "--no-progress"]  # fmt: skip


@pytest.fixture
def own_net(tmp_path, monkeypatch):
    """A module file and its state dict in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "rbg_report_net.py").write_text(NET)
    monkeypatch.delitem(sys.modules, "rbg_report_net", raising=False)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    torch.save({f"body.{k}": v for k, v in net.state_dict().items()}, tmp_path / "net.pt")
    yield tmp_path
    monkeypatch.delitem(sys.modules, "rbg_report_net", raising=False)


def test_report_renders_an_eval_folder_without_the_models_files(own_net, capsys):
    model = ["--model", "rbg_report_net:Net", "--weights", "net.pt"]
    assert main([*EVAL, *model, "--out", "ev", "--cache-dir", "c"]) == 0
    report = (own_net / "ev" / "report.md").read_text()
    for name in ("rbg_report_net.py", "net.pt"):  # the user keeps nothing but the store
        (own_net / name).unlink()
    capsys.readouterr()
    for _ in range(2):  # run.json, written again, still says how to render it
        assert main(["report", "ev"]) == 0
        assert (own_net / "ev" / "report.md").read_text() == report
    assert "rbg: error" not in capsys.readouterr().err
    assert main(["report", "ev", "--cache-dir", "elsewhere"]) == 2
    assert "rerun the `rbg eval`" in capsys.readouterr().err
    assert not (own_net / "elsewhere").exists()


def test_an_eval_folder_can_be_reproduced(own_net, capsys):
    """`rbg reproduce` of an eval folder runs the evaluation its run.json records (the
    model's files are needed: the run is made again), in a fresh store."""
    model = ["--model", "rbg_report_net:Net", "--weights", "net.pt"]
    assert main([*EVAL, *model, "--out", "ev", "--cache-dir", "c"]) == 0
    assert main(["reproduce", "ev", "--out", "again", "--no-progress"]) == 0
    assert "leaderboard.csv" in capsys.readouterr().out
    assert (own_net / "again" / "leaderboard.csv").is_file()


# bad `rbg eval` inputs -> the option the one line names, and what it says
BAD_EVAL = {
    "unknown_attack": (["--attacks", "pgdd"], "--attacks: unknown attack 'pgdd'"),
    "eps_text": (["--eps", "abc"], "--eps: must be a number"),
    "eps_scale": (["--eps", "8"], "--eps: eps 8 is above 1"),
    "n_zero": (["--n", "0"], "--n: must be a positive integer"),
    "batch_size_zero": (["--batch-size", "0"], "--batch-size: must be >= 1"),
    "seed_negative": (["--seed", "-1"], "--seed: must be a whole number"),
    "unknown_dataset_param": (["--dataset-param", "bogus=1"], "--dataset-param bogus: "),
    "dataset_param_value": (["--dataset-param", "max_test=x"], "--dataset-param max_test: "),
    "no_data": (
        ["--dataset", "mnist", "--data-dir", "no-data"],
        "or add --dataset-param download=true",
    ),
    "missing_weights": (["--weights", "missing.pt"], "--weights: no weights file at"),
    "mean_without_std": (["--mean", "0.5"], "--std: must be given too"),
}


@pytest.mark.parametrize("case", sorted(BAD_EVAL))
def test_eval_errors_name_the_options_given(case, own_net, capsys):
    extra, message = BAD_EVAL[case]
    (own_net / "benchmark.toml").write_text('name = "mine"\n')  # the user's own file
    given = files(own_net)
    args = [*EVAL, "--model", "rbg_report_net:Net", "--out", "ev", "--cache-dir", "c", *extra]
    line = one_line_error(capsys, args)
    assert message in line and "benchmark.toml" not in line, line
    assert files(own_net) == given  # refused before anything was written


def test_an_error_mid_run_names_no_suite_file(own_net, capsys):
    (own_net / "rbg_report_net.py").write_text(NET.replace("Linear(64, 10)", "Linear(64, 3)"))
    (own_net / "benchmark.toml").write_text('name = "mine"\n')
    line = one_line_error(capsys, [*EVAL, "--model", "rbg_report_net:Net", "--out", "ev",
                                   "--cache-dir", "c"])  # fmt: skip
    assert "want (N, 10)" in line and "benchmark.toml" not in line, line
    assert sorted(p.name for p in own_net.iterdir()) == [
        "benchmark.toml", "c", "ev", "net.pt", "rbg_report_net.py"
    ]  # fmt: skip


def test_benchmark_errors_name_its_arguments(own_net):
    with pytest.raises(UserError) as caught:
        robustbench_gan.benchmark("rbg_report_net:Net", dataset="digits", eps=0.1,
                                  batch_size=0, n_examples=10, attacks=["fgsm"])  # fmt: skip
    assert str(caught.value).startswith("batch_size: must be >= 1")
    with pytest.raises(UserError, match=r"^dataset_params\.bogus: "):
        robustbench_gan.benchmark("rbg_report_net:Net", dataset="digits", eps=0.1,
                                  dataset_params={"bogus": 1}, attacks=["fgsm"])  # fmt: skip
