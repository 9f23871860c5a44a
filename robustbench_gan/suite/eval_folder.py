"""An `rbg eval` (``benchmark()``) run folder: its run.json says how the run was made, so
``rbg report`` renders the folder again, with nothing of the user's kept but the store.

The suite of a benchmark is built in memory (api.py), so run.json's ``suite`` names no file;
its ``eval`` entry holds the suite table (suite/table.py), the model as it was identified (its fingerprint, the
sha256 of its files: they need not be there any more) and the plugins' origins, from which
the same suite, and so the same cells, come back.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..contract.fields import freeze
from ..contract.suite import Suite
from ..errors import UserError
from .load import parse_suite

SUITE_FILE = "benchmark.toml"  # the built suite's path (beside the user's files): no file
RECORD = "eval"  # run.json's entry


def eval_record(suite: Suite, raw: dict[str, Any], out: Path) -> dict[str, Any]:
    """run.json's ``eval``: the suite table, the model as it was identified (its fingerprint:
    its files need not be kept) and the plugins' origins, so the cells' ids come back."""
    target = suite.targets[0]
    return {
        "suite": raw,
        "name": suite.name,
        "folder": os.path.relpath(suite.path.parent.resolve(), out.resolve()),
        "target": {**target.to_json(), "label": target.label},
        "origins": {
            "dataset": suite.dataset.origin,
            "attacks": [attack.origin for attack in suite.attacks],
        },
    }


def manifest_entries(record: dict[str, Any]) -> dict[str, Any]:
    """What run.json holds for an eval folder: its ``record``, and no suite file's digest."""
    return {"suite_sha256": None, RECORD: record}


def recorded_suite(folder: Path, record: dict[str, Any]) -> Suite:
    """The suite of a benchmark's run folder, from its run.json ``record``."""
    from ..contract.suite import TargetSpec
    from ..models.pretrained import ModelSource
    from ..registry import search_path

    try:
        base = folder / record["folder"]
        spec, origins = record["target"], record["origins"]
        load = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["load"].items()}
        params = freeze(spec["params"])
        target = TargetSpec(
            spec["name"], spec["label"], params, "model", spec.get("origin"),
            source=ModelSource(spec["name"], params, **load),
            fingerprint=freeze(spec["fingerprint"]),
        )  # fmt: skip
        with search_path(base):  # the model as identified, not its files: they may be gone
            suite = parse_suite(record["suite"], base / SUITE_FILE, targets=(target,))
        attacks = tuple(
            dataclasses.replace(a, origin=o) for a, o in zip(suite.attacks, origins["attacks"])
        )
        dataset = dataclasses.replace(suite.dataset, origin=origins["dataset"])
    except UserError as exc:
        raise UserError(f"cannot rebuild the evaluation of its run.json: {exc}",
                        where=str(folder)) from None  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"run.json's {RECORD!r} entry is damaged ({exc!r})",
                        where=str(folder)) from None  # fmt: skip
    return dataclasses.replace(suite, name=record["name"], attacks=attacks, dataset=dataset)
