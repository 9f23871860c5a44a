"""A run's reproductions (`rbg reproduce` adds one to reproductions.json in the run's folder),
as `rbg publish` shows them: whether the run was reproduced, and where."""

from __future__ import annotations

import json
from pathlib import Path

RECORD = "reproductions.json"


def latest_reproduction(folder: Path) -> dict | None:
    """The run's latest reproduction record (reproductions.json), if any."""
    try:
        entries = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list) or not entries or not isinstance(entries[-1], dict):
        return None
    return entries[-1]


def reproduction_text(entry: dict | None) -> tuple[str, str]:
    """The published ``reproduced`` ("yes", "no" or "" when never tried) and
    ``reproduced_where`` (machine, kernel variables and date) of a record."""
    if entry is None:
        return "", ""
    variables = entry.get("kernel_variables") or {}
    setting = "".join(f", {k}={v}" for k, v in sorted(dict(variables).items()))
    where = f"{entry.get('machine', '?')}{setting}, {entry.get('date', '?')}"
    return ("yes" if entry.get("agrees") is True else "no"), where
