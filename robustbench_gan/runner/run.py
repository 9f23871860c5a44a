"""`rbg run`: suite -> data -> plan -> executor -> store -> report, in that order."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from .. import __version__
from ..data.split import DataSplit, resolve_root
from ..errors import UserError
from ..registry import DATASETS
from ..report.markdown import render_report
from ..report.plots import gan_curves_plot, iteration_plot, robust_accuracy_plot, transfer_heatmap
from ..report.tables import Tables, build_tables
from ..suite import Suite, load_suite
from .cells import Context
from .device import describe_device, resolve_device, set_cpu_threads
from .local import execute_plan
from .lock import run_lock
from .plan import Plan, build_plan
from .ray_executor import execute_plan_ray
from .store import Store

EXECUTORS = ("local", "ray")


@dataclass
class RunSummary:
    out: Path
    counts: dict[str, int]
    tables: Tables


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


def load_data(suite: Suite, data_dir: str | Path | None) -> DataSplit:
    """The suite's dataset; a missing root or file is a user error at the [dataset] table."""
    params = dict(suite.dataset.params)
    try:
        return DATASETS.create(
            suite.dataset.name, root=resolve_root(data_dir), seed=suite.seed, **params
        )
    except UserError as exc:
        raise exc.at(f"{suite.path}: dataset") from None
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc), where=f"{suite.path}: dataset") from None


def prepare(
    suite_path: str | Path, data_dir: str | Path | None, *, amp: bool = False, device: str = "cpu"
) -> tuple[Suite, DataSplit, Plan]:
    """The suite (per-device settings for ``device``, "cpu" or "cuda"), its data and plan."""
    suite = load_suite(suite_path, device)
    data = load_data(suite, data_dir)
    return suite, data, build_plan(suite, data.fingerprint, amp=amp)


def run_suite(
    suite_path: str | Path,
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
) -> RunSummary:
    """Run every cell of the suite (finished ones come from the cache) and write the report.

    ``threads`` fixes torch's CPU threads (CPU numbers are reproducible bit for bit
    only at a fixed thread count; one thread is also fastest for small models).
    ``amp`` trains classifiers and GANs under bfloat16 autocast (attacks stay in float32).
    ``executor = "ray"`` sends the cells to Ray (``address`` of a cluster, or a local
    instance with ``workers`` CPUs).
    """
    if executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    torch_device = resolve_device(device)
    set_cpu_threads(threads)
    suite, data, plan = prepare(suite_path, data_dir, amp=amp, device=torch_device.type)
    out_dir = Path(out) if out is not None else Path("results") / suite.name
    run_cells = (
        partial(execute_plan_ray, address=address, workers=workers)
        if executor == "ray"
        else execute_plan
    )
    root = resolve_root(data_dir)
    with run_lock(out_dir):
        return run_locked(
            suite, data, plan, out_dir, torch_device, cache_dir, progress, run_cells, root
        )


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
) -> RunSummary:
    """The body of ``run_suite``, under the output folder's lock."""
    store = Store(cache_dir if cache_dir is not None else default_cache_dir())
    try:
        ctx = Context(
            data=data,
            device=torch_device,
            store=store,
            progress=progress,
            eval_batch_size=suite.eval_batch_size,
            device_name=describe_device(torch_device),
            versions=versions(),
            data_root=None if data_root is None else str(data_root),
        )
        try:
            counts = run_cells(plan, ctx)
        except UserError as exc:  # a plugin rejected its parameters mid-run
            raise exc.at(str(suite.path)) from None
        tables = build_tables(suite, plan, store)
        write_outputs(suite, plan, store, tables, out_dir, device=ctx.device_name)
    finally:
        store.close()
    return RunSummary(out=out_dir, counts=counts, tables=tables)


def write_outputs(
    suite: Suite, plan: Plan, store: Store, tables: Tables, out_dir: Path, *, device: str
) -> None:
    """Write CSVs, plots and report.md into a temporary folder, then move them into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".partial-") as tmp:
        staging = Path(tmp)
        plots = render_plots(suite, plan, store, tables, staging)
        for name, frame in tables.csv_files().items():
            frame.to_csv(staging / name, index=False)
        text = render_report(suite, tables, plots, device=device, versions=versions())
        (staging / "report.md").write_text(text, encoding="utf-8")
        if (out_dir / "plots").exists():
            shutil.rmtree(out_dir / "plots")
        os.replace(staging / "plots", out_dir / "plots")
        for name in [*tables.csv_files(), "report.md"]:
            os.replace(staging / name, out_dir / name)


def render_plots(
    suite: Suite, plan: Plan, store: Store, tables: Tables, staging: Path
) -> dict[str, str]:
    """Every plot of the report; returns name -> path relative to the output folder."""
    plots_dir = staging / "plots"
    plots_dir.mkdir()
    made = {
        "robust_accuracy": robust_accuracy_plot(
            tables.leaderboard, plots_dir / "robust_accuracy.png"
        )
    }
    for attack in suite.attacks:
        if any(e > 0 for e in attack.eps):  # at eps 0 nothing is crafted, nothing transfers
            made[f"transfer_{attack.label}"] = transfer_heatmap(
                tables.transfer, attack.label, plots_dir / f"transfer_{attack.label}.png"
            )
        curves = tables.iteration_curves[tables.iteration_curves["attack"] == attack.label]
        if len(curves):
            made[f"iterations_{attack.label}"] = iteration_plot(
                curves, attack.label, plots_dir / f"iterations_{attack.label}.png"
            )
    for label, cell in plan.metric_cells.items():
        metrics = store.get(cell)
        assert metrics is not None  # executed above
        path = plots_dir / f"gan_samples_{label}.png"
        path.write_bytes(store.read_artifact(metrics.artifacts["grid"]))
        made[f"gan_samples_{label}"] = path
    for label, cell in plan.latent_cells.items():
        latent = store.get(cell)
        assert latent is not None
        path = plots_dir / f"latent_{label}.png"
        path.write_bytes(store.read_artifact(latent.artifacts["grid"]))
        made[f"latent_{label}"] = path
    if len(tables.gan_curves):
        made["gan_curves"] = gan_curves_plot(tables.gan_curves, plots_dir / "gan_curves.png")
    return {name: str(path.relative_to(staging)) for name, path in made.items()}
