"""The Ray executor: cells become Ray tasks that wait for their upstream tasks, and each task
writes its result to the same store as the local executor (a folder every worker can reach:
the local disk for a local instance, a shared file system for a cluster).

Without an address a local Ray instance is started with ``workers`` CPUs. On a cluster with
GPUs each cell that computes on a model asks for one GPU. On Ctrl-C the driver cancels the
tasks still pending or running (their cells are lost; finished ones are in the store).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from tqdm.auto import tqdm

from ..contract.cells import Cell
from ..contract.context import Context
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..errors import UserError
from .local import finished_line, is_finished, run_and_commit


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(
            "--executor ray needs Ray: pip install 'robustbench_gan[distributed]'"
        ) from None
    return ray


def run_cell_task(cell: Cell, ctx: Context, threads: int, *upstream: Any) -> tuple[str, float]:
    """A Ray task: run one cell in a worker. The context arrives unpickled with its own store
    connection; ``upstream`` holds the ids of the tasks it waited for (Ray resolves them
    before the call)."""
    ray = import_ray()
    torch.set_num_threads(threads)
    device = torch.device("cuda") if ray.get_gpu_ids() else torch.device("cpu")
    try:
        seconds = run_and_commit(cell, replace(ctx, device=device, progress=False))
    finally:
        ctx.store.close()
    return cell.id, seconds


def execute_plan_ray(
    plan: Plan, ctx: Context, *, address: str | None = None, workers: int | None = None
) -> dict[str, int]:
    """Submit every unfinished cell as a Ray task in dependency order and wait for all."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from None
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(run_cell_task)
        counts = {"run": 0, "cached": 0, "recomputed": 0}
        shipped = ray.put(replace(ctx, loaded={}))  # data and settings, sent once
        refs: dict[str, Any] = {}
        threads = torch.get_num_threads()  # workers compute as the driver would (bit-identical)
        for cell in plan.cells:
            if is_finished(cell, ctx, counts):
                continue
            options = {"num_gpus": 1} if gpus and EVALUATIONS.get(cell.kind).wants_gpu else {}
            upstream = [refs[d] for d in cell.deps if d in refs]
            refs[cell.id] = task.options(**options).remote(cell, shipped, threads, *upstream)
            counts["run"] += 1
        pending = list(refs.values())
        labels = {cell.id: cell for cell in plan.cells}
        with tqdm(
            total=len(pending), desc="cells (ray)", unit="cell", disable=not ctx.progress
        ) as bar:
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for cell_id, seconds in ray.get(done):  # re-raises a failed cell's error
                        finished = len(refs) - len(pending)
                        finished_line(ctx, labels[cell_id], finished, len(refs), seconds)
                    bar.update(len(done))
            except KeyboardInterrupt:
                cancel(ray, pending)  # on a cluster too, not only a local instance's shutdown
                raise
        return counts
    finally:
        if started:
            ray.shutdown()


def cancel(ray: Any, refs: list[Any]) -> None:
    """Stop the tasks of ``refs`` (Ctrl-C): a running cell is lost, never half-stored."""
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # already finished, or Ray going down: nothing left to stop
            pass
