"""Measure how much a suite's numbers move with the CPU kernel path and the seed.

    python tests/bench/spread.py suites/quickstart.toml --work /tmp/spread [--variants ...]
    python tests/bench/spread.py suites/quickstart.toml --work /tmp/spread --summarize

Runs the suite once per variant, each in a fresh store: ``native`` (this machine as it is),
``default`` and ``avx2`` (torch, oneDNN and MKL held to that instruction set through
ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS: this machine computing like
an older or another CPU), ``avx512`` where the CPU has it, and ``seedN`` (the native path,
suite seed N). ``--summarize`` compares every variant with ``native`` table by table, as
`rbg reproduce` does (robustbench_gan.publish.agreement), and writes spread.md and spread.csv
into the suite's work folder: per table and numeric column, the largest difference from the
native run across kernel paths (same seed) and the largest range over seeds (native path).
docs/reproducibility.md quotes them.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the claims
from claims import CLAIMS, failed  # noqa: E402

from robustbench_gan.publish.agreement import compare_runs, keyed_rows, measured_columns, read
from robustbench_gan.publish.tolerances import relative_tolerance

KERNEL_PATHS = {
    "native": {},
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
    },
}
DEFAULT_VARIANTS = ["native", "default", "avx2", "seed1", "seed2", "seed3", "seed4"]


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def is_variant(name: str) -> bool:
    return name in KERNEL_PATHS or (name.startswith("seed") and name[4:].isdigit())


def variant_setting(name: str) -> tuple[dict[str, str], int | None]:
    """The environment and seed of a variant."""
    if name.startswith("seed") and name[4:].isdigit():
        return {}, int(name[4:])
    if name not in KERNEL_PATHS:
        raise SystemExit(f"unknown variant {name!r}: native, default, avx2, avx512 or seedN")
    if name == "avx512" and not has_avx512():
        raise SystemExit("this CPU has no AVX-512: leave the avx512 variant out")
    return KERNEL_PATHS[name], None


def run_variant(suite: Path, work: Path, name: str, jobs: int, data_dir: str | None) -> float:
    env_vars, seed = variant_setting(name)
    out = work / suite.stem / name
    command = [
        sys.executable, "-m", "robustbench_gan", "run", str(suite), "--out", str(out),
        "--cache-dir", str(work / suite.stem / f".store-{name}"), "--no-progress",
        "--jobs", str(jobs),
    ]  # fmt: skip
    if seed is not None:
        command += ["--seed", str(seed)]
    if data_dir:
        command += ["--data-dir", data_dir]
    start = time.perf_counter()
    subprocess.run(command, env={**os.environ, **env_vars}, check=True)
    return time.perf_counter() - start


SKIPPED_TABLES = ("samples.csv",)


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def aligned(runs: dict[str, Path], table: str) -> tuple[pd.DataFrame, list[str]] | None:
    """One table of every run, rows matched on its key columns (without the seed): a frame
    with a column ``variant`` and the measurements, and the measurement columns."""
    frames = {}
    for name, folder in runs.items():
        if (folder / table).is_file():
            frames[name] = read(folder / table)
    if "native" not in frames:
        return None
    keys, measures = measured_columns(frames["native"])
    keys = [k for k in keys if k != "seed"]
    rows = []
    for name, frame in frames.items():
        for key, row in keyed_rows(frame, [k for k in keys if k in frame]).items():
            rows.append({"variant": name, "key": key, **row})
    return pd.DataFrame(rows), [m for m in measures if m not in ("seed",)]


def column_spreads(frame: pd.DataFrame, column: str) -> tuple[str, str]:
    """A numeric column: the largest |difference| from native over the kernel-path runs,
    and the largest range over the seeds (native is seed 0). A text column (a claim, a flag):
    how many rows differ from native, over the kernel-path runs and over the seeds."""
    frame = frame.assign(key=frame["key"].map(repr))
    wide = frame.pivot(index="key", columns="variant", values=column)
    kernels = [v for v in wide.columns if v in KERNEL_PATHS and v != "native"]
    seeds = [v for v in wide.columns if v.startswith("seed")]
    values = wide.apply(pd.to_numeric, errors="coerce")
    if values.notna().any().any():
        moved = values[kernels].sub(values["native"], axis=0).abs()
        kernel = fmt(float(moved.max().max()) if kernels else math.nan)
        seeded = values[["native", *seeds]]
        seed = (seeded.max(axis=1) - seeded.min(axis=1)).max() if seeds else math.nan
        if kernels and relative_tolerance(column) is not None:  # as tolerances.py measures
            larger = values[kernels].abs().clip(lower=values["native"].abs(), axis=0)
            kernel += f" ({float((moved / larger).max().max()):.1%} relative)"
        return kernel, fmt(float(seed))
    text = wide.astype(object).where(wide.notna(), "").astype(str)

    def differ(variants: list[str]) -> str:
        count = sum(int((text[v] != text["native"]).sum()) for v in variants)
        return f"{count} of {len(text) * len(variants)} rows differ" if variants else ""

    return differ(kernels), differ(seeds)


def write_spread(work: Path) -> str:
    """spread.md and spread.csv of the runs under ``work`` (one folder per variant)."""
    runs = {
        p.name: p for p in sorted(work.iterdir())
        if (p / "leaderboard.csv").is_file() and is_variant(p.name)
    }  # fmt: skip
    lines = [f"## {work.name}", "", f"Runs: {', '.join(runs)}.", ""]
    for name in runs:
        if name in KERNEL_PATHS and name != "native":
            verdicts = compare_runs(runs["native"], runs[name])
            differ = [v.table for v in verdicts if not v.agrees]
            state = "every table agrees" if not differ else f"differ: {', '.join(differ)}"
            lines.append(f"- `rbg reproduce`'s verdict, {name} against native: {state}")
    claims = CLAIMS.get(work.name)
    if claims is not None:
        lines.append("")
        for name, folder in runs.items():
            broken = failed(claims(folder))
            state = "every claim holds" if not broken else "fails: " + "; ".join(broken)
            lines.append(f"- claims of tests/claims.py, {name}: {state}")
    lines += ["", "| table | column | kernel paths | seeds |", "|---|---|---|---|"]
    rows = []
    tables = sorted({p.name for r in runs.values() for p in r.glob("*.csv")} - set(SKIPPED_TABLES))
    for table in tables:
        found = aligned(runs, table)
        if found is None:
            continue
        frame, measures = found
        for column in measures:
            kernel, seed = column_spreads(frame, column)
            rows.append({"table": table, "column": column, "kernel_paths": kernel, "seeds": seed})
            lines.append(f"| {table} | {column} | {kernel} | {seed} |")
    pd.DataFrame(rows).to_csv(work / "spread.csv", index=False)
    text = "\n".join(lines) + "\n"
    (work / "spread.md").write_text(text)
    return text


def fmt(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="where the runs go")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-dir")
    parser.add_argument("--summarize", action="store_true", help="compare the runs made")
    args = parser.parse_args()
    if args.summarize:
        print(write_spread(args.work / args.suite.stem))
        return
    for name in args.variants.split(","):
        seconds = run_variant(args.suite, args.work, name, args.jobs, args.data_dir)
        print(f"{args.suite.stem} {name}: {seconds:.0f} s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
