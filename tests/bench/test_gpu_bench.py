"""gpu_bench.py keeps working: a CPU smoke run prints its table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("gpu_bench.py")


def test_gpu_bench_smoke_run_on_cpu():
    args = ["--device", "cpu", "--batch-size", "4", "--gan-batch-size", "4"]
    args += ["--steps", "1", "--width", "4"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: cpu")
    assert any(line.startswith("| ResNet-18 training step |") for line in lines)
    assert any(line.startswith("| PGD-10 attack |") for line in lines)
    gan_rows = [line for line in lines if line.startswith("| BigGAN training step (batch 4")]
    assert len(gan_rows) == 1
    cells = [cell.strip() for cell in gan_rows[0].strip("|").split("|")]
    assert float(cells[1].replace(",", "")) > 0 and float(cells[2].replace(",", "")) > 0


def test_a_slow_rate_is_never_printed_as_zero():
    """A loaded machine can run under one image per second: printed with its digits."""
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert [bench.rate(v) for v in (0.0123, 0.4, 12.34, 999.6, 12345.6)] == [
        "0.0123", "0.4", "12.3", "1,000", "12,346",
    ]  # fmt: skip
