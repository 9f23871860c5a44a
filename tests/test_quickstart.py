"""The quickstart suite reproduces the committed results/quickstart/ and has the properties
the project promises on digits. Runs the real suite (about 100 s on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from committed import committed

from robustbench_gan.runner.run import run_suite

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = committed("quickstart")
TABLES = ("leaderboard.csv", "transfer.csv", "ensemble.csv", "gan.csv")


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    run_suite(
        ROOT / "suites" / "quickstart.toml",
        out=out,
        cache_dir=out / "cache",
        device="cpu",
        progress=False,
    )
    return {name: pd.read_csv(out / name) for name in TABLES}


def acc(board, target, defense, attack, eps):
    row = board[
        (board.target == target)
        & (board.defense == defense)
        & (board.attack == attack)
        & (board.eps == eps)
    ]
    assert len(row) == 1
    return float(row["robust_acc"].iloc[0])


@pytest.mark.slow
def test_same_numbers_as_the_committed_results(quickstart):
    for name in TABLES:
        committed = pd.read_csv(COMMITTED / name)
        fresh = quickstart[name]
        drop = [c for c in ("seconds",) if c in fresh.columns]
        # Accuracies are ratios of counts and must match bit for bit. The FIDs go through
        # BLAS (a matrix square root), whose kernel depends on the processor (OpenBLAS picks
        # one per CPU type, or OPENBLAS_CORETYPE forces one): they agree to ~1e-11 relative.
        exact = name != "gan.csv"
        pd.testing.assert_frame_equal(
            fresh.drop(columns=drop),
            committed.drop(columns=drop),
            check_exact=exact,
            **({} if exact else {"rtol": 1e-9, "atol": 0.0}),
        )


@pytest.mark.slow
def test_digits_properties(quickstart):
    board = quickstart["leaderboard.csv"]
    clean = board[(board.target == "small_cnn") & (board.defense == "none")]["clean_acc"].iloc[0]
    assert clean >= 0.93
    at_zero = board[board.eps == 0]
    np.testing.assert_allclose(at_zero["robust_acc"], at_zero["clean_acc"], atol=1e-12)
    for _, group in board.groupby(["target", "defense", "attack"]):
        assert (np.diff(group.sort_values("eps")["robust_acc"].to_numpy()) <= 0).all(), group
    for (target, defense), _ in board.groupby(["target", "defense"]):
        for eps in sorted(board.eps.unique()):
            pgd, fgsm = (acc(board, target, defense, a, eps) for a in ("pgd", "fgsm"))
            assert pgd <= fgsm + 0.01, (target, defense, eps, pgd, fgsm)
    defended = acc(board, "small_cnn", "fgsm_at", "fgsm", 0.1)
    plain = acc(board, "small_cnn", "none", "fgsm", 0.1)
    assert defended >= plain + 0.2, (defended, plain)
    assert (board["flags"].isna() | (board["flags"] == "")).all()
    gan = quickstart["gan.csv"].set_index("generator")
    assert gan.loc["cdcgan", "label_fidelity"] >= 0.8
