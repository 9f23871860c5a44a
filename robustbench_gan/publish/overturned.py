"""Which published rows an escalating attack overturned: from a run's escalation.csv, per
(target, defense, attack, norm, eps), the robust accuracy AutoAttack's standard list alone
left where the ``adaptive`` attack's remedies broke images it could not (``overturned_from``;
NaN elsewhere). The file is the run's, so it is checked like any input: a table that is not
one is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import UserError
from .checks import read_cells

FILE = "escalation.csv"
KEYS = ["target", "defense", "attack", "norm", "eps"]
COLUMNS = [*KEYS, "overturned_from"]


def read_overturned(folder: Path) -> pd.DataFrame:
    """The overturned rows of the run in ``folder`` (empty without an escalation.csv)."""
    path = folder / FILE
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    cells = read_cells(path)
    needed = [*KEYS, "robust_acc_standard", "overturned"]
    missing = [c for c in needed if c not in cells.columns]
    if missing:
        raise UserError(f"not an escalation table (missing: {', '.join(missing)})", where=str(path))
    eps = pd.to_numeric(cells["eps"], errors="coerce")
    standard = pd.to_numeric(cells["robust_acc_standard"], errors="coerce")
    flag = cells["overturned"].str.strip().str.lower()
    bad = eps.isna() | standard.isna() | ~standard.between(0, 1) | ~flag.isin(["true", "false"])
    if bad.any():
        row = int(bad.to_numpy().argmax()) + 1
        raise UserError(
            f"row {row}: eps, robust_acc_standard (a share) and overturned (True or False) "
            "must be given",
            where=str(path),
        )
    rows = cells.assign(eps=eps, overturned_from=standard)[flag == "true"]
    return rows[COLUMNS].reset_index(drop=True)
