"""`rbg reproduce RUN_DIR`: run a finished run's suite again here, in a fresh store, and say
table by table whether this machine's numbers agree with it (publish/agreement.py).

The record of each reproduction goes into the run's folder (reproductions.json), where
`rbg publish` reads it: each published row says whether its run was reproduced and where.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..contract.suite import Suite
from ..errors import UserError
from ..runner.machine import machine_info
from ..runner.run import read_manifest, run_suite, suite_digest
from ..suite.eval_folder import RECORD as EVAL_RECORD
from ..suite.eval_folder import recorded_suite
from .agreement import Verdict, compare_runs
from .reproductions import RECORD


@dataclass
class Reproduction:
    out: Path
    verdicts: list[Verdict]

    @property
    def agrees(self) -> bool:
        return all(v.agrees for v in self.verdicts)


def fresh_store(cache_dir: str | Path | None) -> tuple[Path, bool]:
    """The store to run in, and whether it is ours to remove: ``cache_dir`` must be new or
    empty (cells found in a store are not computed again, so nothing would be reproduced)."""
    if cache_dir is None:
        return Path(tempfile.mkdtemp(prefix="rbg-reproduce-")), True
    path = Path(cache_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"--cache-dir {path}: not empty; reproducing needs a fresh store")
    return path, False


def reproduce(
    run_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    jobs: int = 1,
    progress: bool = True,
    alpha: float = 0.05,
) -> Reproduction:
    """Run ``run_dir``'s suite (its seed, device, data and --only cells, from run.json) into
    ``out`` (default: ``<run_dir>-reproduced`` beside it) in a fresh store (``cache_dir``, new
    or empty, kept; default a temporary one, removed), compare table by table and record the
    verdict in ``run_dir``/reproductions.json."""
    folder = Path(run_dir)
    manifest = read_manifest(folder)
    suite: Path | Suite = folder / manifest["suite"]
    if manifest.get(EVAL_RECORD) is not None:  # an `rbg eval` folder: no suite file
        suite = recorded_suite(folder, manifest[EVAL_RECORD])
    elif not suite.is_file():
        raise UserError(f"{folder}: its suite {suite} is not there any more")
    recorded = manifest.get("suite_sha256")
    if isinstance(suite, Path) and recorded is not None and recorded != suite_digest(suite):
        raise UserError(
            f"{suite} changed since the run in {folder} (its sha256 differs from run.json's): "
            "reproducing needs the suite the run was made with"
        )
    named = folder.resolve()
    again = Path(out) if out is not None else named.parent / f"{named.name}-reproduced"
    if again.resolve() == folder.resolve():
        raise UserError("--out must not be the run being reproduced")
    if data_dir is None and manifest.get("data_dir") is not None:
        data_dir = folder / manifest["data_dir"]
    store, ours = fresh_store(cache_dir)
    try:
        run_suite(
            suite,
            out=again,
            device=str(manifest.get("device", "cpu")),
            data_dir=data_dir,
            cache_dir=store,
            progress=progress,
            amp=bool(manifest.get("amp", False)),
            channels_last=bool(manifest.get("channels_last", False)),
            only=(manifest.get("partial") or {}).get("only"),
            jobs=jobs,
            seed=manifest.get("seed"),
        )
    finally:
        if ours:
            shutil.rmtree(store, ignore_errors=True)
    result = Reproduction(again, compare_runs(folder, again, alpha))
    record(folder, result)
    return result


def record(folder: Path, result: Reproduction) -> None:
    """Add this reproduction to the run's reproductions.json (newest last)."""
    path = folder / RECORD
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        entries = entries if isinstance(entries, list) else []
    except (OSError, ValueError):
        entries = []
    machine = machine_info()
    entries.append({
        "date": date.today().isoformat(),
        "agrees": result.agrees,
        "machine": f"{machine['cpu']}, {machine['cpu_capability']}",
        "kernel_variables": machine["kernel_variables"],
        "out": os.path.relpath(result.out.resolve(), folder.resolve()),
        "tables": {v.table: v.agrees for v in result.verdicts},
    })  # fmt: skip
    path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
