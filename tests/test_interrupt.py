"""Ctrl-C under `--jobs 2`: a line at once, the workers ended within seconds, exit 130, and
every finished cell kept, so a rerun computes only the rest."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from robustbench_gan.cli import main
from robustbench_gan.runner.run import prepare
from robustbench_gan.runner.store import Store

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.toml"


def in_group(group: int) -> list[int]:
    """The live processes of a process group (zombies are gone as far as work goes)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
        if entry.name.isdigit() and fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc and process groups")
def test_ctrl_c_ends_the_workers_and_keeps_the_finished_cells(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustbench_gan", "run", str(SMOKE), "--jobs", "2",
         "--out", str(out)],
        env={**os.environ, "RBG_CACHE_DIR": str(cache)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True).start()
    said: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while not any(x.startswith("rbg: [1/") for x in said):  # a cell finished
            assert proc.poll() is None and time.monotonic() < deadline, "".join(said)
            try:
                said.append(lines.get(timeout=0.5))
            except queue.Empty:
                pass
        workers = in_group(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole group gets it
        start = time.monotonic()
        proc.wait(timeout=10)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)  # the reader thread drains what is left
    while not lines.empty():
        said.append(lines.get())
    err = "".join(said)
    assert proc.returncode == 130, err
    assert "rbg: stopping (Ctrl-C) ..." in err and "Traceback" not in err, err
    assert "leaked" not in err  # a worker ended mid-cell leaves no semaphore behind
    assert len(workers) >= 3 and took < 10  # the driver and its two workers at least
    deadline = time.monotonic() + 5  # multiprocessing's resource tracker ends by itself
    while in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not in_group(proc.pid)

    finished = {x.split("] ", 1)[1].rsplit(" (", 1)[0] for x in said if x.startswith("rbg: [")}
    _, _, plan = prepare(SMOKE, None)
    store = Store(cache)
    try:
        stored = {c.label for c in plan.cells if store.get(c.id) is not None}
        assert finished <= stored < {c.label for c in plan.cells}
        for cell in plan.cells:  # whole: no row without its artifacts
            record = store.get(cell.id)
            assert record is None or store.artifacts_intact(record), cell.label
    finally:
        store.close()
    capsys.readouterr()
    assert main(["run", str(SMOKE), "--cache-dir", str(cache), "--dry-run"]) == 0
    rows = [
        re.match(r"\w+  (.{7})  \S+\s+(.*)  <- ", x) for x in capsys.readouterr().out.split("\n")
    ]
    cached = {row[2] for row in rows if row and row[1] == "cached "}
    assert cached == stored  # a rerun computes only the rest


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_ctrl_c_while_a_worker_starts_is_deferred_not_lost():
    """A Ctrl-C while the driver spawns a worker (under load, the moment after a cell
    finishes) still reaches the driver: ignoring SIGINT meanwhile lost it and the run went on
    to the end. (Blocked in the main thread, the signal may still land on another thread of
    the driver, whose handler then raises in the main thread at once: either way it stops.)"""
    from robustbench_gan.runner.pool import sigint_deferred

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            time.sleep(1.0)  # delivered by now
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, handler)


def as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default and unblocked, as a command typed in a
    terminal starts (the test process's own state, which other tests may leave ignoring or
    blocking SIGINT, is not passed on)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
