"""The claims the project makes of its committed suites, as functions of a run folder.

The tests hold the committed runs (and fresh runs) to them; tests/bench/spread.py checks them on
every kernel path and seed it runs, and docs/reproducibility.md gives the outcome: a claim
stays only if it holds on all of them. Each function maps a claim, in words, to whether it
holds in the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from robustbench_gan.contract.schema import upgrade_board

#: how far PGD may come out above FGSM: a share, or two images where that is more (PGD's
#: random start leaves the odd image FGSM's one step breaks)
PGD_SLACK = 0.01


def read(run: Path, name: str) -> pd.DataFrame:
    """A run's table; a leaderboard written before a column was renamed under today's names."""
    frame = pd.read_csv(run / name, keep_default_na=False, na_values=[""])
    return upgrade_board(frame) if name == "leaderboard.csv" else frame


def acc(board: pd.DataFrame, target: str, defense: str, attack: str, eps: float) -> float:
    row = board[
        (board.target == target) & (board.defense == defense) & (board.attack == attack)
        & (board.eps == eps)
    ]  # fmt: skip
    assert len(row) == 1, (target, defense, attack, eps)
    return float(row["robust_acc"].iloc[0])


def beats(gan: pd.DataFrame, label: str) -> bool:
    return gan.loc[label, "beats_baseline"] in (True, "True")


def row_beats(row: pd.Series) -> bool:
    return row["beats_baseline"] in (True, "True")


def attack_claims(board: pd.DataFrame) -> dict[str, bool]:
    """What every attack table promises: eps 0 changes nothing, robust accuracy never rises
    with eps, PGD at least as strong as FGSM (within PGD_SLACK or two images)."""
    board = board[board["norm"] != "domain"]
    at_zero = board[board.eps == 0]
    monotone = all(
        (np.diff(group.sort_values("eps")["robust_acc"].to_numpy()) <= 0).all()
        for _, group in board.groupby(["target", "defense", "attack", "norm"])
    )
    claims = {
        "eps 0 changes nothing": bool(np.allclose(at_zero["robust_acc"], at_zero["clean_acc"])),
        "robust accuracy never rises with eps": monotone,
    }
    pgd = board[board["attack"] == "pgd"].set_index(["target", "defense", "norm", "eps"])
    fgsm = board[board["attack"] == "fgsm"].set_index(["target", "defense", "norm", "eps"])
    both = pgd.index.intersection(fgsm.index)
    if len(both):
        slack = np.maximum(PGD_SLACK, 2 / pgd.loc[both, "n_eval"])
        claims["PGD at most FGSM + max(0.01, 2 images)"] = bool(
            (pgd.loc[both, "robust_acc"] <= fgsm.loc[both, "robust_acc"] + slack).all()
        )
    return claims


def quickstart_claims(run: Path) -> dict[str, bool]:
    board, gan = read(run, "leaderboard.csv"), read(run, "gan.csv").set_index("generator")
    clean = board[(board.target == "small_cnn") & (board.defense == "none")]["clean_acc"]
    defended = acc(board, "small_cnn", "fgsm_at", "fgsm", 0.1)
    return {
        **attack_claims(board),
        "small_cnn's clean accuracy at least 0.93": float(clean.iloc[0]) >= 0.93,
        "FGSM-AT adds at least 0.2 under FGSM at eps 0.1": (
            defended >= acc(board, "small_cnn", "none", "fgsm", 0.1) + 0.2
        ),
        "no indicator fires": bool(
            (board["indicators"].isna() | (board["indicators"] == "")).all()
        ),
        "cDCGAN's label fidelity at least 0.75": gan.loc["cdcgan", "label_fidelity"] >= 0.75,
        "DCGAN beats the class-means baseline": beats(gan, "dcgan"),
        "cDCGAN beats the class-means baseline": beats(gan, "cdcgan"),
    }


#: generators of digits-gans whose win over the baseline did not hold on every seed tried
#: (docs/reproducibility.md): DCGAN lost on coverage at seeds 1 and 4 (0.594 against 0.622,
#: 0.575 against 0.639), ProGAN at seed 4 (0.625 against 0.639), StarGAN's blur row at seeds
#: 1 to 4; StarGAN's invert and rotate rows never beat it
NOT_ROBUST_WINS = ("dcgan", "progan", "stargan")


def digits_gans_claims(run: Path) -> dict[str, bool]:
    gan = read(run, "gan.csv").set_index("generator")
    star = gan[gan["family"] == "stargan"].set_index("domain")
    held = gan[~gan["family"].isin(NOT_ROBUST_WINS)].drop(index="baseline")
    claims = {
        f"{label}{' (' + row['domain'] + ')' if isinstance(row['domain'], str) else ''} beats "
        "the class-means baseline": row_beats(row)
        for label, row in held.iterrows()
    }
    families = gan.set_index("family")
    for family in ("cdcgan", "acgan", "biggan"):  # 0.80 once: cDCGAN gave 0.797 on DEFAULT
        claims[f"{family}'s label fidelity at least 0.75"] = (
            families.loc[family, "label_fidelity"] >= 0.75
        )
    curves = read(run, "gan_curves.csv")
    cycle = curves.loc[curves["generator"] == "cyclegan", "cycle_error"].to_numpy()
    tenth = len(cycle) // 10
    claims["CycleGAN's cycle error falls by half"] = bool(
        cycle[-tenth:].mean() < 0.5 * cycle[:tenth].mean()
    )
    claims["StarGAN's translations land in their domain (>= 0.9)"] = bool(
        (star["domain_accuracy"] >= 0.9).all()
    )
    return claims


def smoke_claims(run: Path) -> dict[str, bool]:
    return attack_claims(read(run, "leaderboard.csv"))


CLAIMS: dict[str, Callable[[Path], dict[str, bool]]] = {
    "quickstart": quickstart_claims,
    "digits-gans": digits_gans_claims,
    "smoke": smoke_claims,
    "digits-attacks": lambda run: attack_claims(read(run, "leaderboard.csv")),
}


def failed(claims: dict[str, bool]) -> list[str]:
    return [claim for claim, holds in claims.items() if not holds]
