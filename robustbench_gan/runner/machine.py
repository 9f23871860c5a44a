"""What a run computed on: the CPU, its kernel path and the libraries, for run.json and the rows.

On one machine, with the same thread count and kernel path, runs are bit-identical; another
CPU (or ``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``, which make
this one compute like another) changes float rounding, so every row names the path it ran on
(docs/reproducibility.md).
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import torch

#: the variables that choose a CPU kernel path (recorded when set)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
LIBRARIES = ("robustbench_gan", "torch", "numpy", "scipy", "pandas")


def cpu_capability() -> str:
    """torch's CPU kernel path: DEFAULT, AVX2, AVX512, ... (what ATEN_CPU_CAPABILITY chose)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # an old torch
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["torch"] = torch.__version__
    return out


def machine_info() -> dict[str, object]:
    """run.json's ``machine``: CPU model, kernel path, torch threads, the kernel variables that
    were set, the operating system and library versions."""
    return {
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
        "threads": torch.get_num_threads(),
        "kernel_variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
        "platform": platform.platform(),
        "libraries": library_versions(),
    }
