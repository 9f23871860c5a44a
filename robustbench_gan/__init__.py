"""robustbench_gan: adversarial robustness benchmarks for PyTorch classifiers, GANs in the loop.

``robustbench_gan.benchmark(model, dataset=..., eps=...)`` evaluates one model (api.py);
``rbg run SUITE`` runs a suite file; ``@robustbench_gan.plugin`` marks a factory function a
suite may name as ``module:attr`` (registry.py).
"""

from typing import Any

from .registry import plugin
from .version import __version__

__all__ = ["BenchmarkResult", "__version__", "benchmark", "plugin"]


def __getattr__(name: str) -> Any:
    """``benchmark`` and ``BenchmarkResult`` are imported on first use (they pull in torch)."""
    if name in ("benchmark", "BenchmarkResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'robustbench_gan' has no attribute {name!r}")
