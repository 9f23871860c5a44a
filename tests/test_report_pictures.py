"""Report pictures worth their place: no 1x1 transfer heatmap or one-point iteration curve
(a single-model report), and a published leaderboard picture that holds its whole legend."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
from PIL import Image

from robustbench_gan.contract.schema import TRANSFER_COLUMNS
from robustbench_gan.contract.tables import Tables
from robustbench_gan.evaluations.attack import Attack
from robustbench_gan.evaluations.transfer import Transfer
from robustbench_gan.publish.plot import (
    legend_columns,
    marker_style,
    robust_vs_clean_png,
)

SUITE = SimpleNamespace(attacks=[SimpleNamespace(label="pgd", eps=(0.0, 0.1))])


def leaderboard(models: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"target": m, "defense": "none", "attack": "pgd", "norm": "linf", "eps": eps,
             "robust_acc": 0.5, "clean_acc": 0.9}
            for m in models for eps in (0.0, 0.1)
        ]
    )  # fmt: skip


def iteration_curves(models: list[str], iterations: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"target": m, "defense": "none", "attack": "pgd", "norm": "linf", "eps": eps,
             "iteration": k, "robust_acc": 0.5}
            for m in models for eps in (0.0, 0.1) for k in range(iterations)
        ]
    )  # fmt: skip


def transfer(models: list[str]) -> pd.DataFrame:
    rows = [
        {"attack": "pgd", "eps": 0.1, "source": s, "target": t, "n_eval": 40,
         "target_clean_acc": 0.9, "target_robust_acc": 0.5, "transfer_success_rate": 0.4,
         "cell_id": f"{s}{t}"}
        for s in models for t in models
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def plots_of(models: list[str], iterations: int, folder) -> set[str]:
    tables = Tables()
    tables.set("leaderboard", leaderboard(models))
    tables.set("iteration_curves", iteration_curves(models, iterations))
    tables.set("transfer", transfer(models))
    made = Attack().plots(SUITE, None, tables, folder)
    made.update(Transfer().plots(SUITE, None, tables, folder))
    return set(made)


def test_one_model_draws_no_transfer_heatmap(tmp_path):
    assert plots_of(["mlp"], 3, tmp_path) == {"robust_accuracy", "iterations_pgd"}
    assert "transfer_pgd" in plots_of(["mlp", "cnn"], 3, tmp_path)


def test_a_curve_of_one_iteration_is_not_drawn(tmp_path):
    assert plots_of(["mlp", "cnn"], 1, tmp_path) == {"robust_accuracy", "transfer_pgd"}
    assert "iterations_pgd" in plots_of(["mlp"], 2, tmp_path)


def lines(names: list[str], suites: tuple[str, ...]) -> pd.DataFrame:
    """Ranked lines of one protocol at one budget, as ranking.ranked_lines makes them."""
    rows = []
    for suite in suites:
        for i, name in enumerate(names):
            robust = 0.5 - 0.03 * i
            rows.append({
                "protocol": "p", "eps": 8 / 255, "model": name, "suite": suite,
                "clean": 0.9 - 0.03 * i, "robust": robust, "ci_low": robust - 0.05,
                "ci_high": robust + 0.05, "indicators": "",
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_the_leaderboard_picture_holds_its_whole_legend():
    """Twelve long names under one panel: the old picture cut the legend's outer columns off
    at its edges; now every edge of the picture is background."""
    names = [f"wide_resnet_{i} [adversarial_training_{i}]" for i in range(6)]
    png = robust_vs_clean_png(lines(names, ("a-long-suite-name", "another")), "Protocol 1")
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("L"))
    for edge in (pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:]):
        assert (edge > 250).all()
    height, width = pixels.shape
    assert height > width  # the legend's twelve lines below the panel, one column


def test_legend_columns_and_styles():
    assert legend_columns(["mlp", "lenet"], 4.4) == 2
    assert legend_columns(["x" * 60, "y"], 4.4) == 1
    assert legend_columns(["mlp"] * 9, 13.2) == 3
    assert len({marker_style(i) for i in range(100)}) == 100
    assert len({marker_style(i)[1] for i in range(10)}) == 10  # few models: all markers differ


def test_one_budget_draws_no_eps_curve(tmp_path):
    """`rbg eval` at one eps: each model's line would be a single point, so there is no
    robust-accuracy-against-eps picture (and no report link to one)."""
    tables = Tables()
    board = leaderboard(["mlp", "cnn"])
    tables.set("leaderboard", board[board["eps"] == 0.1].reset_index(drop=True))
    tables.set("iteration_curves", iteration_curves(["mlp", "cnn"], 1))
    assert "robust_accuracy" not in Attack().plots(SUITE, None, tables, tmp_path)
