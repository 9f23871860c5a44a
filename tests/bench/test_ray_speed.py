"""Ray with 2 workers against 1 worker on independent CPU-bound cells (issue goal: at least
1.6 times as fast on 2 cores). Run with --benchmark-enable; the speed-up is printed."""

from __future__ import annotations

import time

import pytest

from robustbench_gan.runner.run import run_suite

pytest.importorskip("ray")

# six independent trainings (distinct widths, so six distinct cells) and their light evaluation
TARGETS = "".join(
    f'[[targets]]\nname = "small_cnn"\nlabel = "cnn{i}"\nwidth = {24 + i}\n' for i in range(6)
)
SUITE = (
    'name = "parallel"\n[dataset]\nname = "digits"\n'
    "[train]\nepochs = 40\nlr = 0.002\n[eval]\neps = [0, 0.1]\nn = 50\n"
    + TARGETS
    + '[[attacks]]\nname = "fgsm"\n'
)


@pytest.mark.benchmark(group="ray")
def test_ray_two_workers_against_one(benchmark, tmp_path):
    if benchmark.disabled:
        pytest.skip("a timing of about 90 s: run with --benchmark-enable")
    suite = tmp_path / "parallel.toml"
    suite.write_text(SUITE)
    times = {}

    def run(workers: int) -> float:
        start = time.perf_counter()
        out = tmp_path / f"out{workers}"
        run_suite(suite, out=out, cache_dir=tmp_path / f"c{workers}", device="cpu", progress=False,
                  executor="ray", workers=workers)  # fmt: skip
        return time.perf_counter() - start

    def both():
        times[1], times[2] = run(1), run(2)

    benchmark.pedantic(both, rounds=1, iterations=1)
    speedup = times[1] / times[2]
    benchmark.extra_info.update(one_worker=times[1], two_workers=times[2], speedup=speedup)
    print(f"\n1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s, speed-up {speedup:.2f}")
