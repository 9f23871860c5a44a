"""`rbg run`: suite -> data -> plan -> executor -> store -> report, in that order."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..contract.cells import ModelRef
from ..contract.context import Context
from ..contract.data import DataSplit, resolve_root
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.results import Finished, ModelInfo, Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..errors import UserError
from ..registry import DATASETS, search_path
from ..render.plots import plot_cache
from ..report.outputs import MANIFEST, write_outputs
from ..report.tables import build_tables
from ..suite import load_suite
from ..suite.classes import check_classes
from ..version import __version__
from .device import describe_device, resolve_device, set_cpu_threads
from .local import execute_plan, is_finished
from .lock import run_lock
from .machine import machine_info
from .partial import finished_part, partial_entry
from .plan import build_plan
from .pool import execute_plan_pool
from .ray_executor import execute_plan_ray
from .store import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXECUTORS = ("local", "ray")


@dataclass
class RunSummary:
    out: Path
    counts: dict[str, int]
    tables: Tables  # of the finished cells (all, unless --only left some to run)
    partial: dict | None = None  # what run.json says of a run that left cells to run


def default_cache_dir() -> Path:
    env = os.environ.get("RBG_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "robustbench_gan"


def versions() -> str:
    return (
        f"robustbench_gan {__version__}; torch {torch.__version__}; python {sys.version.split()[0]}"
    )


def read_manifest(folder: Path) -> dict:
    """A run folder's run.json (with at least its suite)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        manifest["suite"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{folder}: no {MANIFEST} here (not the output folder of a run)") from None
    return manifest


def suite_digest(path: Path) -> str | None:
    """The sha256 of the suite's content, comments and layout aside (``rbg reproduce`` tells
    an edited suite from the run's); None for a suite built in memory (benchmark())."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    try:
        data = json.dumps(tomllib.loads(data.decode("utf-8")), sort_keys=True, default=str).encode()
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass  # read as it is (a suite that parsed once parses again)
    return hashlib.sha256(data).hexdigest()


def load_data(suite: Suite, data_dir: str | Path | None) -> DataSplit:
    """The suite's dataset; a missing root or file is a user error at the [dataset] table, and
    so is an attack that needs more classes than the data has (before anything trains)."""
    params = dict(suite.dataset.params)
    try:
        data = DATASETS.create(
            suite.dataset.name, root=resolve_root(data_dir), seed=suite.seed, **params
        )
    except UserError as exc:
        raise exc.at(f"{suite.path}: dataset") from None
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=f"{suite.path}: dataset") from None
    check_classes(suite, data.num_classes)
    return data


def prepare(
    suite: str | Path | Suite,
    data_dir: str | Path | None,
    *,
    amp: bool = False,
    device: str = "cpu",
    seed: int | None = None,
) -> tuple[Suite, DataSplit, Plan]:
    """The suite (read from its file with the per-device settings for ``device``, "cpu" or
    "cuda", unless already a Suite; ``seed`` in place of its own), its data and plan."""
    if not isinstance(suite, Suite):
        suite = load_suite(suite, device)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise UserError(f"--seed must be a whole number >= 0, got {seed}")
        suite = dataclasses.replace(suite, seed=seed)
    data = load_data(suite, data_dir)
    try:
        return suite, data, build_plan(suite, data.fingerprint, amp=amp)
    except UserError as exc:  # entries the suite could not tell apart: one cell, two labels
        raise (exc.at(str(suite.path)) if suite.path.is_file() else exc) from None


def run_suite(
    suite_path: str | Path | Suite,
    *,
    out: str | Path | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    threads: int = 1,
    amp: bool = False,
    executor: str = "local",
    address: str | None = None,
    workers: int | None = None,
    force: str | None = None,
    only: str | Sequence[str] | None = None,
    render_only: bool = False,
    jobs: int = 1,
    seed: int | None = None,
    recorded: dict[str, Any] | None = None,
    channels_last: bool = False,
) -> RunSummary:
    """Run every cell of the suite (finished ones come from the cache) and write the report.

    ``threads`` fixes torch's CPU threads (CPU numbers are reproducible bit for bit
    only at a fixed thread count; one thread is also fastest for small models).
    ``amp`` trains classifiers and GANs under bfloat16 autocast (attacks stay in float32).
    ``executor = "ray"`` sends the cells to Ray (``address`` of a cluster, or a local
    instance with ``workers`` CPUs). ``force`` recomputes the cells whose label matches
    this shell-style pattern ("*": all), cached or not. ``only`` (a pattern or several, all
    of which a cell must match: a label pattern or ``NAME=GLOB`` on a column, ``Plan.only``)
    runs just the cells it selects and those they build on; the outputs then hold the
    finished cells of the suite, marked partial while some are left (partial.py).
    ``render_only`` computes nothing: every cell (of ``only``) must be stored (``rbg
    report``). ``jobs`` > 1 runs independent cells in that many worker processes on this
    machine (pool.py), with the serial run's numbers. ``seed`` replaces the suite's seed.
    ``recorded``: more entries for run.json (an `rbg eval` folder's ``eval`` record).
    ``channels_last`` evaluates the models in the channels-last memory layout (other kernels:
    the numbers agree statistically, not bit for bit, with the default layout's; the device
    column says which ran).
    """
    if executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs must be a whole number >= 1, got {jobs}")
    torch_device = resolve_device(device)
    set_cpu_threads(threads)
    suite, data, plan = prepare(suite_path, data_dir, amp=amp, device=torch_device.type, seed=seed)
    out_dir = Path(out) if out is not None else Path("results") / suite.name
    run_cells: Callable[[Plan, Context], dict[str, int]] = execute_plan
    if executor == "ray":
        run_cells = partial(execute_plan_ray, address=address, workers=workers)
    elif jobs > 1:
        run_cells = partial(execute_plan_pool, jobs=jobs)
    if render_only:
        run_cells = stored_only
    patterns = [only] if isinstance(only, str) else list(only or ())
    to_run = plan.only(*patterns) if patterns else plan
    store_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # the store used: --cache-dir or $RBG_CACHE_DIR; null for ~/.cache/robustbench_gan, the
    # default of whoever renders it again (no home folder of this machine in run.json)
    chosen = cache_dir if cache_dir is not None else os.environ.get("RBG_CACHE_DIR") or None
    manifest = {
        "device": torch_device.type,
        "amp": amp,
        "channels_last": channels_last,
        **run_paths(suite, out_dir, data_dir, chosen),
        "seed": suite.seed,
        "suite_sha256": suite_digest(suite.path),
        "machine": machine_info(),
        **(recorded or {}),
    }
    root = resolve_root(data_dir)
    with run_lock(out_dir):
        return run_locked(
            suite,
            data,
            plan,
            out_dir,
            torch_device,
            store_dir,
            progress,
            run_cells,
            root,
            force=force,
            manifest=manifest,
            to_run=to_run,
            only=patterns,
            channels_last=channels_last,
        )


def stored_only(plan: Plan, ctx: Context) -> dict[str, int]:
    """The executor of ``rbg report``: every cell must be in the store already."""
    counts = {"run": 0, "cached": 0, "recomputed": 0}
    for cell in plan.cells:
        if not is_finished(cell, ctx, counts):
            raise UserError(
                f"{cell.label!r} has no stored result (or an unusable one) in {ctx.store.root}; "
                + (ctx.store.hint or "`rbg report` renders stored results only: run `rbg run`")
            )
    return counts


def run_paths(
    suite: Suite, out_dir: Path, data_dir: str | Path | None, cache_dir: str | Path | None
) -> dict[str, str | None]:
    """The suite, data and cache folders of a run, relative to its output folder."""

    def rel(path: str | Path | None) -> str | None:
        if path is None:
            return None
        return os.path.relpath(Path(path).resolve(), out_dir.resolve())

    return {"suite": rel(suite.path), "data_dir": rel(data_dir), "cache_dir": rel(cache_dir)}


def run_locked(
    suite: Suite,
    data: DataSplit,
    plan: Plan,
    out_dir: Path,
    torch_device: torch.device,
    cache_dir: str | Path | None,
    progress: bool,
    run_cells: Callable[[Plan, Context], dict[str, int]],
    data_root: Path | None = None,
    *,
    force: str | None = None,
    manifest: dict | None = None,
    to_run: Plan | None = None,
    only: Sequence[str] = (),
    channels_last: bool = False,
) -> RunSummary:
    """The body of ``run_suite``, under the output folder's lock; ``to_run`` (default: the
    whole plan) is the part of the plan to run (selected by the patterns ``only``)."""
    store = Store(cache_dir if cache_dir is not None else default_cache_dir())
    try:
        ctx = Context(
            data=data,
            device=torch_device,
            store=store,
            progress=progress and sys.stderr.isatty(),
            progress_lines=progress and not sys.stderr.isatty(),
            eval_batch_size=suite.eval_batch_size,
            device_name=describe_device(torch_device, channels_last),
            channels_last=channels_last,
            versions=versions(),
            data_root=None if data_root is None else str(data_root),
            force=force,
            suite_dir=str(Path(suite.path).parent.resolve()),
        )
        try:
            with search_path(Path(suite.path).parent):  # module:attr plugins beside the suite
                counts = run_cells(plan if to_run is None else to_run, ctx)
        except UserError as exc:  # a plugin rejected its parameters mid-run
            raise (exc.at(str(suite.path)) if suite.path.is_file() else exc) from None
        done = finished_part(plan, store)  # the whole plan, unless --only left cells to run
        partial = partial_entry(only, done, plan)
        if partial is not None:
            manifest = {**(manifest or {}), "partial": partial}
        results = collect_results(done, store, data.num_classes, data.source)
        tables = build_tables(suite, results)
        # a warm run copies the plots it drew before; `rbg report` adds none to the store
        with plot_cache(store.root / "plots", add=run_cells is not stored_only):
            write_outputs(
                suite,
                results,
                tables,
                out_dir,
                device=ctx.device_name,
                versions=ctx.versions,
                manifest=manifest,
            )
    finally:
        store.close()
    return RunSummary(out=out_dir, counts=counts, tables=tables, partial=partial)


def collect_results(plan: Plan, store: Store, num_classes: int = 0, dataset: str = "") -> Results:
    """Every finished cell of the plan, by kind and key, with the artifacts the report reads;
    the tables and the report see nothing else of the store or the plan."""
    keys = {cell_id: key for index in plan.index.values() for key, cell_id in index.items()}
    cells: dict[str, dict] = {}
    for cell in plan.cells:
        record = store.get(cell.id)
        if record is None:
            raise RuntimeError(f"cell {cell.id} ({cell.label}) has no result; run the plan first")
        wanted = EVALUATIONS.get(cell.kind).report_artifacts
        artifacts = {name: store.read_artifact(record.artifacts[name]) for name in wanted}
        finished = Finished(cell.id, record.spec, record.result, artifacts, record.artifacts)
        cells.setdefault(cell.kind, {})[keys[cell.id]] = finished
    by_id = {f.cell_id: f for found in cells.values() for f in found.values()}
    models = {m.label: model_info(m, by_id) for m in plan.models.values()}
    return Results(models, cells, num_classes=num_classes, versions=versions(), dataset=dataset)


def model_info(model: ModelRef, cells: dict[str, Finished]) -> ModelInfo:
    """What the tables say of an evaluated model: names, size of a prediction, weights."""
    if model.train_cell is None:  # a model defense over members
        members = [model_info(m, cells) for m in model.members]
        return ModelInfo(
            model.label,
            model.base,
            model.defense,
            architecture="+".join(m.architecture for m in members),
            networks=sum(m.networks for m in members),
        )
    made = cells[model.train_cell]
    classifier = made.spec["classifier"]
    # trained here: the stored weights; loaded: its state dict's sha256, else its file's
    sha = made.artifact_sha256.get("state") or made.result.get("weights_sha256") or None
    for key, value in sorted(classifier.get("fingerprint", {}).items()):
        if sha is None and key.endswith("sha256"):
            sha = value
    name = made.result.get("architecture") or classifier["name"]
    return ModelInfo(model.label, model.base, model.defense, name, 1, sha)
