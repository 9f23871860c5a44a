"""Per-cell overhead of the local executor: the wall time of executing a plan of about 200
tiny cells against the sum of the cells' own times (issue goal: at most 1.5x). Run with
--benchmark-enable; the ratio is printed and kept in the benchmark's extra info."""

from __future__ import annotations

import time

import pytest
import torch

from robustbench_gan.contract.context import Context
from robustbench_gan.runner.local import execute_plan
from robustbench_gan.runner.run import prepare
from robustbench_gan.runner.store import Store

TARGETS = "".join(
    f'[[targets]]\nname = "mlp"\nlabel = "mlp{i}"\nhidden = {8 + i}\n' for i in range(5)
)
ATTACKS = "".join(
    f'[[attacks]]\nname = "pgd"\nlabel = "pgd{i}"\nsteps = {i + 1}\n' for i in range(10)
)
SUITE = (
    'name = "tiny"\n[dataset]\nname = "digits"\nmax_train = 100\nmax_test = 20\n'
    "[train]\nepochs = 1\n[eval]\neps = [0, 0.1]\n" + TARGETS + ATTACKS
)


@pytest.mark.benchmark(group="executor")
def test_local_executor_overhead(benchmark, tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    _, data, plan = prepare(suite, None)
    runs = iter(range(1000))

    def run():
        store = Store(tmp_path / f"cache{next(runs)}")
        try:
            ctx = Context(data=data, device=torch.device("cpu"), store=store, progress=False)
            start = time.perf_counter()
            counts = execute_plan(plan, ctx)
            wall = time.perf_counter() - start
            own = store.db.execute("SELECT SUM(seconds) FROM cells").fetchone()[0]
        finally:
            store.close()
        return counts["run"], wall, own

    cells, wall, own = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(cells=cells, wall=wall, cells_own=own, overhead_ratio=wall / own)
    print(f"\n{cells} cells: wall {wall:.2f} s, cells' own {own:.2f} s, ratio {wall / own:.2f}")
    assert cells == len(plan.cells) >= 200
