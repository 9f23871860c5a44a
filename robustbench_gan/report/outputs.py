"""Writing a run's outputs: the CSVs, the JSON documents, the plots, report.md and run.json,
staged in a temporary folder and moved into place, so a run killed while writing leaves the
previous outputs whole (a staging folder it left behind is removed by the next run).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..checkpoint import confined
from ..contract.kinds import EVALUATIONS
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import csv_text
from .markdown import render_report

MANIFEST = "run.json"  # how the run was made, so `rbg report` can render it again


def write_outputs(
    suite: Suite,
    results: Results,
    tables: Tables,
    out_dir: Path,
    *,
    device: str,
    versions: str,
    manifest: dict | None = None,
) -> None:
    """Write CSVs, plots and report.md into a temporary folder, then move them into place
    (a staging folder left by a run killed while writing is removed first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".partial-") as tmp:
        staging = Path(tmp)
        plots = render_plots(suite, results, tables, staging)
        for name, frame in tables.csv_files().items():
            confined(staging, name).write_text(csv_text(frame), encoding="utf-8")
        for name, document in tables.documents.items():
            text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False)
            confined(staging, name).write_text(text + "\n", encoding="utf-8")
        text = render_report(suite, tables, plots, device=device, versions=versions)
        text = mark_report(text, (manifest or {}).get("partial"))
        (staging / "report.md").write_text(text, encoding="utf-8")
        (staging / MANIFEST).write_text(json.dumps(manifest or {}, indent=2) + "\n")
        if (out_dir / "plots").exists():
            shutil.rmtree(out_dir / "plots")
        os.replace(staging / "plots", out_dir / "plots")
        for name in [*tables.csv_files(), *tables.documents, "report.md", MANIFEST]:
            os.replace(staging / name, out_dir / name)
        for name in tables.empty_files():  # nothing to say this time: no stale copy either
            confined(out_dir, name).unlink(missing_ok=True)


def render_plots(suite: Suite, results: Results, tables: Tables, staging: Path) -> dict[str, str]:
    """Every kind's plots; returns name -> path relative to the output folder."""
    plots_dir = staging / "plots"
    plots_dir.mkdir()
    made = {}
    for kind in EVALUATIONS.table_order():
        made.update(kind.plots(suite, results, tables, plots_dir))
    # a plot written outside the plots folder (a label as a path) is refused, not moved
    return {
        name: confined(plots_dir, Path(path).resolve()).relative_to(staging.resolve()).as_posix()
        for name, path in made.items()
    }


def mark_report(text: str, partial: dict[str, Any] | None) -> str:
    """report.md with a line under its title saying which part of the suite it shows."""
    if partial is None:
        return text
    chosen = " ".join(f"--only {pattern}" for pattern in partial["only"]) or "unfinished"
    note = (
        f"**Partial run (`{chosen}`): {partial['finished']} of {partial['cells']} cells.** "
        "The tables and sections below hold the finished cells only; run the suite without "
        "--only to finish it."
    )
    title, _, rest = text.partition("\n")
    return f"{title}\n\n{note}\n{rest}"
