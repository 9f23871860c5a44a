"""What an escalating attack (``adaptive``) did: per model and budget, the indicators that
fired during the attack, the remedies they called for, the robust accuracy its standard
parts left and the images the remedies broke after them (escalation.csv)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..attacks.remedies import remedy_of
from ..render.format import markdown_table
from .common import unbits

if TYPE_CHECKING:
    from .attack_tables import Outcomes

ESCALATION_COLUMNS = [
    "target", "defense", "attack", "norm", "eps", "indicators_fired", "remedies_run",
    "robust_acc_standard", "robust_acc", "broken_by_remedies", "overturned",
]  # fmt: skip


def escalation_table(outcomes: Outcomes, models: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """One row per escalating attack cell and budget > 0 (``models``: label -> (target,
    defense)). ``overturned``: the remedies broke an image the standard parts left robust."""
    rows = []
    for (label, attack), (_, res) in outcomes.items():
        if label not in models:
            continue
        remedy_part = np.array([bool(remedy_of(part)) for part in res.parts], dtype=bool)
        for entry in res.per_eps:
            if entry.remedies is None or entry.eps == 0:
                continue
            correct = unbits(entry.correct)
            fooled_by = np.asarray(entry.fooled_by if entry.fooled_by is not None else [])
            by_remedy = (
                (fooled_by >= 0) & remedy_part[np.clip(fooled_by, 0, None)]
                if len(fooled_by) and len(remedy_part)
                else np.zeros(len(correct), dtype=bool)
            )
            n = max(len(correct), 1)
            rows.append(
                {
                    "target": models[label][0],
                    "defense": models[label][1],
                    "attack": attack,
                    "norm": res.norm,
                    "eps": entry.eps,
                    "indicators_fired": ";".join(entry.fired or []),
                    "remedies_run": ";".join(entry.remedies),
                    "robust_acc_standard": int((correct | by_remedy).sum()) / n,
                    "robust_acc": int(correct.sum()) / n,
                    "broken_by_remedies": int(by_remedy.sum()),
                    "overturned": bool(by_remedy.any()),
                }
            )
    return pd.DataFrame(rows, columns=ESCALATION_COLUMNS)


def escalation_text(frame: pd.DataFrame) -> list[str]:
    return [
        "The `adaptive` attack runs AutoAttack's standard list, measures the indicators of "
        "attack failure on the images it left robust and runs the remedy of each that fires "
        "(BPDA through the model's differentiable stand-in, EOT, a transfer from the stand-in, "
        "a scale-invariant margin loss, more restarts). `robust_acc_standard` is what the "
        "standard list alone left, `robust_acc` the worst case over all of it; a row is "
        "overturned where a remedy broke an image the standard list could not "
        "(escalation.csv; which part broke each image: samples.csv).",
        "",
        markdown_table(frame),
    ]
