"""Which attack broke which image: the per-image table and each attack's marginal contribution.

Per model, norm and eps > 0, the suite's attacks of that norm are taken in suite order (a
composite's parts in its own order), as AutoAttack runs its list: an image is broken by the
first attack whose example it misclassifies. ``samples.csv`` keeps one row per image;
``attack_contributions.csv`` counts, per attack, the images it broke that the earlier ones had
not, and the robust accuracy left after it (the log AutoAttack prints, kept as data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..contract.results import Results
from ..contract.suite import Suite
from ..render.format import markdown_table
from .common import unpack

if TYPE_CHECKING:
    from .attack_tables import Outcomes

SAMPLE_COLUMNS = [
    "target", "defense", "norm", "eps", "image", "label", "clean_pred", "broken_by", "adv_pred",
    "linf", "l2", "robust",
]  # fmt: skip
CONTRIBUTION_COLUMNS = [
    "target", "defense", "norm", "eps", "order", "attack", "broke", "robust_acc_after",
]  # fmt: skip


def samples_table(suite: Suite, results: Results, outcomes: Outcomes) -> pd.DataFrame:
    """One row per model, norm, eps > 0 and evaluated image (see the module docstring)."""
    frames = []
    for label, model in results.models.items():
        cells = [(a.label, outcomes[label, a.label][1]) for a in suite.attacks]
        for norm in dict.fromkeys(res.norm for _, res in cells):
            of_norm = [(name, res) for name, res in cells if res.norm == norm]
            budgets = sorted({e.eps for _, res in of_norm for e in res.per_eps if e.eps > 0})
            for eps in budgets:
                frame = broken_at(of_norm, eps)
                frame.insert(0, "target", model.base)
                frame.insert(1, "defense", model.defense)
                frame.insert(2, "norm", norm)
                frame.insert(3, "eps", eps)
                frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[SAMPLE_COLUMNS]


def broken_at(cells: list[tuple[str, Any]], eps: float) -> pd.DataFrame:
    """Per image at one budget: the first of ``cells`` (attack label, AttackOutcome) that
    broke it, its prediction and its perturbation's norms."""
    first = cells[0][1]
    labels, clean = unpack(first.labels).astype(np.int64), unpack(first.clean_pred)
    n = len(labels)
    broken_by = np.full(n, "", dtype=object)
    adv_pred = np.full(n, -1, dtype=np.int64)
    linf, l2 = np.full(n, np.nan, dtype=np.float32), np.full(n, np.nan, dtype=np.float32)
    standing = clean == labels  # images no attack has broken yet
    for name, res in cells:
        entry = next((e for e in res.per_eps if e.eps == eps), None)
        if entry is None:
            continue
        pred = unpack(entry.pred)
        new = standing & (pred != labels)
        parts = np.asarray(entry.fooled_by) if entry.fooled_by is not None else None
        for i in np.flatnonzero(new):
            part = res.parts[parts[i]] if parts is not None and parts[i] >= 0 else ""
            broken_by[i] = f"{name}: {part}" if part else name
        adv_pred[new] = pred[new]
        linf[new], l2[new] = unpack(entry.linf)[new], unpack(entry.l2)[new]
        standing &= ~new
    return pd.DataFrame(
        {
            "image": np.arange(n),
            "label": labels,
            "clean_pred": clean.astype(np.int64),
            "broken_by": broken_by,
            "adv_pred": pd.array(np.where(adv_pred >= 0, adv_pred, None), dtype="Int64"),
            "linf": linf,
            "l2": l2,
            "robust": standing.astype(int),
        }
    )


def contributions_table(suite: Suite, outcomes: Outcomes, samples: pd.DataFrame) -> pd.DataFrame:
    """Per model, norm and eps: each attack (a composite's parts each) in the order run, the
    images it broke that the earlier ones had not, and the robust accuracy after it."""
    order = attack_order(suite, outcomes)
    rows = []
    for (target, defense, norm, eps), group in samples.groupby(
        ["target", "defense", "norm", "eps"], sort=False
    ):
        n = len(group)
        left = int((group["clean_pred"] == group["label"]).sum())
        counts = group["broken_by"].value_counts()
        for k, name in enumerate(order[norm]):
            broke = int(counts.get(name, 0))
            left -= broke
            rows.append(
                {
                    "target": target,
                    "defense": defense,
                    "norm": norm,
                    "eps": eps,
                    "order": k + 1,
                    "attack": name,
                    "broke": broke,
                    "robust_acc_after": left / n,
                }
            )
    return pd.DataFrame(rows, columns=CONTRIBUTION_COLUMNS)


def attack_order(suite: Suite, outcomes: Outcomes) -> dict[str, list[str]]:
    """Per norm, the names ``broken_by`` can take, in the order the attacks are credited."""
    order: dict[str, list[str]] = {}
    seen: dict[str, tuple[str, Any]] = {}
    for (_, attack), (_, res) in outcomes.items():
        seen.setdefault(attack, (res.norm, res))
    for attack in suite.attacks:
        if attack.label not in seen:
            continue
        norm, res = seen[attack.label]
        names = [f"{attack.label}: {part}" for part in res.parts] or [attack.label]
        order.setdefault(norm, []).extend(names)
    return order


def contributions_text(frame: pd.DataFrame) -> list[str]:
    """Per norm: a matrix of models and budgets against attacks, counting images broken."""
    lines = [
        "Per model and eps, the images each attack broke that the attacks before it had not "
        "(attacks of one norm in suite order, a composite's parts in its own order), as "
        "AutoAttack logs it. An attack with zeros everywhere added nothing to this evaluation. "
        "Per image: `samples.csv` (the attack that broke it, its prediction and the "
        "perturbation's norms); these counts: `attack_contributions.csv`.",
        "",
    ]
    for norm, part in frame.groupby("norm", sort=False):
        matrix = part.pivot_table(
            index=["target", "defense", "eps"], columns="attack", values="broke", sort=False
        )
        matrix = matrix[list(dict.fromkeys(part["attack"]))].astype(int)
        last = part.groupby(["target", "defense", "eps"], sort=False)["robust_acc_after"].last()
        matrix = matrix.join(last.rename("robust_acc")).reset_index()  # by key, not position
        lines += [f"{norm}:", "", markdown_table(matrix), ""]
    return lines
