"""The parallel executor of one machine (`--jobs N`): independent cells run at once in worker
processes, each pinned to its share of the CPU cores.

Each worker process is started once (``spawn``: a fresh interpreter, safe with torch's
thread pools), reads the run's context once from a file the driver wrote, ends by itself if
the driver dies (a kill -9), keeps the models it loaded between cells, and
computes with the same number of torch threads as a serial run (``--threads``), so every
cell's numbers are the serial run's bit for bit. The driver submits a cell when the cells it
builds on are finished, writes one line (or a bar) per finished cell, and stops at the first
error, which it raises as it came. Results go to the same store as the serial executor's, so
a run interrupted here resumes under any executor.

The context file lies in a jobs folder under the store, ``<store>/tmp/jobs-<host>-<pid>-<start
time>-<random>``, named after the driver that made it: the driver removes it when it ends, and a
driver killed with kill -9 leaves it (the pickled dataset: hundreds of MB) for the next run
to remove, once no process of that pid and start time runs on this host (``sweep_stale``; a
pid reused by another process has another start time). Older versions kept it in
``$TMPDIR/rbg-jobs-*``; such a folder is removed too once no pool made after it is running.

Ctrl-C is the driver's alone: workers are started with SIGINT ignored (a terminal sends it to
the whole process group), and on KeyboardInterrupt the driver ends them at once (SIGTERM, then
SIGKILL): the cells they were computing are lost, never half-stored (a row is committed in one
transaction after its artifacts), and every finished cell is already in the store.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from tqdm.auto import tqdm
from tqdm.std import tqdm as tqdm_base

from ..contract.cells import Cell
from ..contract.context import Context
from ..contract.plan import Plan
from .local import finished_line, is_finished, run_and_commit

_WORKER: dict[str, Any] = {}  # in a worker process: its context
CONTEXT = "context.pickle"  # the run's context, written once for the workers to read
SCRATCH = "tmp"  # <store>/tmp: the jobs folders of the drivers using the store
LEGACY = "rbg-jobs-"  # $TMPDIR/rbg-jobs-*: the jobs folders of older versions
LEGACY_GRACE = 600.0  # seconds: a younger old-style folder may still be in the making


def mapping_proxy(items: dict[str, Any]) -> MappingProxyType:
    """A frozen suite table (a spec's parameters) again, from its items."""
    return MappingProxyType(items)


# a cell goes to its worker pickled, with its spec's frozen tables (mapping proxies)
ForkingPickler.register(MappingProxyType, lambda proxy: (mapping_proxy, (dict(proxy),)))


def default_jobs() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def core_shares(jobs: int) -> list[set[int]]:
    """The cores of this process dealt out to ``jobs`` workers (each gets at least one)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return [set() for _ in range(jobs)]
    return [set(cores[i::jobs]) or {cores[i % len(cores)]} for i in range(jobs)]


def exit_with(parent: int) -> None:
    """End this worker when the driver dies (a kill -9 of `rbg run`): an orphan would wait for
    work forever, since its sibling holds the task queue open."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def start_worker(folder: str, threads: int, shares: list[set[int]], driver: int) -> None:
    """Worker initializer: end with the driver, pin to a share of the cores, fix the thread
    count, and read the run's context from ``folder`` (a file, not shared memory: a worker
    never waits on a dead driver to hand it something)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops the workers on Ctrl-C
    if hasattr(signal, "pthread_sigmask"):  # blocked by the driver while it spawned us
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # (disabled) bars take a lock; not tqdm's multiprocessing one, whose semaphore a worker
    # ended by the driver would leave behind for the resource tracker to complain about
    tqdm_base.set_lock(threading.RLock())
    # the driver's pid from the driver: one that died while this worker started is noticed
    threading.Thread(target=exit_with, args=(driver,), daemon=True).start()
    share = shares[claim(Path(folder), len(shares))]
    if share and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, share)
    torch.set_num_threads(threads)
    # a Context (store, specs, data), not weights: pickled by this run's driver into a
    # private folder it created (mode 0700, jobs_folder), and read back only here
    _WORKER["ctx"] = pickle.loads((Path(folder) / CONTEXT).read_bytes())


def claim(folder: Path, n: int) -> int:
    """The first of ``n`` core shares no other worker has claimed (0 when all are taken)."""
    for index in range(n):
        try:
            os.close(os.open(folder / f"share-{index}", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        return index
    return 0


def run_in_worker(cell: Cell) -> tuple[str, float]:
    """One cell in a worker process; returns its id and seconds."""
    ctx: Context = _WORKER["ctx"]
    return cell.id, run_and_commit(cell, ctx)


def execute_plan_pool(plan: Plan, ctx: Context, *, jobs: int) -> dict[str, int]:
    """Run the unfinished cells of ``plan`` on ``jobs`` worker processes."""
    counts = {"run": 0, "cached": 0, "recomputed": 0}
    todo = [cell for cell in plan.cells if not is_finished(cell, ctx, counts)]
    if not todo:
        return counts
    jobs = min(jobs, len(todo))
    waiting = {cell.id: cell for cell in todo}
    threads = torch.get_num_threads()
    shipped = replace(ctx, loaded={}, clean={}, progress=False, progress_lines=False)
    with jobs_folder(ctx.store.root) as folder:
        (folder / CONTEXT).write_bytes(pickle.dumps(shipped, pickle.HIGHEST_PROTOCOL))
        pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(str(folder), threads, core_shares(jobs), os.getpid()),
        )
        run_all(pool, waiting, ctx, counts, len(todo), jobs)
    return counts


def run_all(
    pool: ProcessPoolExecutor,
    waiting: dict[str, Cell],
    ctx: Context,
    counts: dict[str, int],
    total: int,
    jobs: int,
) -> None:
    """Submit cells as their upstream cells finish; stop at the first error."""
    running: dict[Future[tuple[str, float]], Cell] = {}
    bar = tqdm(total=total, desc=f"cells ({jobs} jobs)", unit="cell", disable=not ctx.progress)
    try:
        while waiting or running:
            for cell in ready(waiting, running):  # in plan order: the serial run's order
                with sigint_deferred():  # a worker started here ignores it from its first line
                    running[pool.submit(run_in_worker, cell)] = cell
                del waiting[cell.id]
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                cell = running.pop(future)
                _, seconds = future.result()  # a failed cell raises here
                counts["run"] += 1
                bar.update(1)
                finished_line(ctx, cell, counts["run"], total, seconds)
    except KeyboardInterrupt:
        stop_workers(pool)  # now, not after the cells they compute
        raise
    finally:
        bar.close()
        for future in running:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """SIGINT blocked in the main thread while a worker may be spawned: the worker inherits
    the blocked mask across exec and ignores SIGINT from its first line, so a Ctrl-C while it
    imports its modules does not reach it. The driver still gets that Ctrl-C: when the block
    ends, or at once through another of its threads (a signal ignored here instead was lost,
    and the run went on). Only the main thread of a POSIX process may do this; elsewhere it
    does nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_workers(pool: ProcessPoolExecutor, grace: float = 2.0) -> None:
    """End the pool's worker processes at once: SIGTERM, then SIGKILL for those still alive
    after ``grace`` seconds."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(1.0)


def ready(waiting: dict[str, Cell], running: dict[Future[Any], Cell]) -> list[Cell]:
    """The waiting cells none of whose upstream cells is still waiting or running."""
    busy = set(waiting) | {cell.id for cell in running.values()}
    return [cell for cell in waiting.values() if not any(d in busy for d in cell.deps)]


# -- jobs folders: this run's, and those that drivers killed with kill -9 left behind ----------
def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (the state first, the start time
    at [19]), or None: no such process (it may end between two reads), or no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()
    except (OSError, ValueError):
        return None


def start_ticks(pid: int) -> int:
    """When process ``pid`` started, in clock ticks since boot (0 where /proc is missing)."""
    fields = proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else 0


def host_id() -> str:
    """This machine and pid namespace, in a jobs folder's name (a store may be shared between
    machines, or containers whose pids the others do not see)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}\n{namespace}".encode()).hexdigest()[:8]


@contextmanager
def jobs_folder(store_root: Path) -> Iterator[Path]:
    """A private folder (mode 0700) for this run's workers under the store, named after its
    driver (host, pid, start time), removed when the block ends."""
    scratch = Path(store_root) / SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    prefix = f"jobs-{host_id()}-{pid}-{start_ticks(pid)}-"
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def driver_gone(name: str) -> bool:
    """Whether the driver that named its jobs folder ``name`` has ended: no process of that
    pid, or one started at another time (the pid was reused), or a zombie. A folder of
    another machine, or not named by jobs_folder, is never judged gone."""
    parts = name.split("-")
    if len(parts) != 5 or parts[0] != "jobs" or not all(p.isdigit() for p in parts[2:4]):
        return False
    if parts[1] != host_id():
        return False
    pid, start = int(parts[2]), int(parts[3])
    fields = proc_stat(pid)
    if fields is None:
        if proc_stat("self") is not None:  # /proc works: there is no such process
            return True
        try:  # no /proc: whether the pid is taken (a reused one is taken for a live run)
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    if fields[0] in ("Z", "X"):
        return True
    return start != 0 and len(fields) > 19 and int(fields[19]) != start


def sweep_stale(store_root: Path) -> None:
    """Remove the jobs folders whose driver ended without removing them (a kill -9): under
    the store, and $TMPDIR/rbg-jobs-* of older versions (legacy_stale). A folder of a
    running driver is never touched."""
    for folder in folders(Path(store_root) / SCRATCH, "jobs-"):
        if driver_gone(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
    legacy = folders(Path(tempfile.gettempdir()), LEGACY)
    if legacy:
        workers = pool_workers()
        for folder in legacy:
            if legacy_stale(folder, workers):
                shutil.rmtree(folder, ignore_errors=True)


def folders(parent: Path, prefix: str) -> list[Path]:
    try:
        return sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir())
    except OSError:
        return []


def legacy_stale(folder: Path, workers: list[tuple[float, float]] | None) -> bool:
    """Whether an old-style jobs folder (no driver in its name) is left over: made before
    this boot, or made over LEGACY_GRACE seconds ago while no pool worker started after it
    by a driver started before it runs (such a pool's driver may have made it). ``workers``:
    (start, its driver's start) of the running pool workers, None when unknown (no /proc)."""
    try:
        info = folder.stat()
        try:
            made = (folder / CONTEXT).stat().st_mtime  # written before the workers start
        except FileNotFoundError:
            made = info.st_mtime
    except OSError:
        return False
    if workers is None or info.st_uid != os.getuid():
        return False
    booted = boot_time()
    if booted is not None and made < booted:
        return True
    if time.time() - made < LEGACY_GRACE:
        return False
    return not any(start >= made - 2 and driver <= made + 2 for start, driver in workers)


def boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def pool_workers() -> list[tuple[float, float]] | None:
    """(start, its driver's start) in seconds since the epoch of every running process of
    this user that is a multiprocessing worker (spawned) of a running driver; None without
    /proc."""
    booted = boot_time()
    if booted is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    running: dict[int, tuple[int, float, Path]] = {}  # pid -> parent, start, /proc entry
    for entry in Path("/proc").iterdir():
        fields = proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and fields[0] not in ("Z", "X") and len(fields) > 19:
            running[int(entry.name)] = (int(fields[1]), booted + int(fields[19]) / tick, entry)
    found = []
    for parent, start, entry in running.values():
        try:
            ours = entry.stat().st_uid == os.getuid()
            spawned = b"spawn_main" in (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if ours and spawned and parent in running:
            found.append((start, running[parent][1]))
    return found
