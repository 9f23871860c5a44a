"""The committed CIFAR-10 transfer run (suites/cifar10-transfer.toml): the grid's shape and the
papers' orderings that hold on it (issue 28). Success rates are pooled over the (surrogate,
target) pairs of normally trained targets, white-box cells left out."""

from __future__ import annotations

import pandas as pd
import pytest
from committed import committed

RUN = committed("cifar10-transfer")
ADVERSARIAL = "small_cnn+fgsm_rs"
ENSEMBLE, MEMBERS = "small_cnn & resnet18 & vgg", ("small_cnn", "resnet18", "vgg")


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    grid = pd.read_csv(RUN / "transfer_grid.csv")
    grid["eps255"] = (grid["eps"] * 255).round().astype(int)
    return grid[~grid["white_box"].astype(bool)]


def pooled(rows: pd.DataFrame) -> pd.Series:
    """Per attack: images fooled over images classified right when clean, all pairs."""
    sums = rows.groupby("attack")[["fooled", "clean_correct"]].sum()
    return sums["fooled"] / sums["clean_correct"]


def test_the_grid_has_its_columns_images_and_pairs(grid):
    for column in ("surrogate", "target", "attack", "eps", "success_rate", "ci_low", "ci_high"):
        assert column in grid.columns
    assert set(grid["eps255"]) == {8, 16}
    assert (
        (grid["ci_low"] <= grid["success_rate"]) & (grid["success_rate"] <= grid["ci_high"])
    ).all()
    board = pd.read_csv(RUN / "leaderboard.csv")
    assert (board["n_eval"] == 500).all()
    models = set(zip(board["target"], board["defense"]))
    assert len(models) >= 7  # six families and an adversarially trained model
    assert ENSEMBLE in set(grid["surrogate"])
    assert (RUN / "transfer_grid_images.csv").is_file() and (RUN / "ensemble_effect.csv").is_file()


@pytest.mark.parametrize("eps255", [8, 16])
def test_momentum_and_variance_tuning_transfer_better(grid, eps255):
    """MI-FGSM above I-FGSM, VMI, VNI and TI above MI-FGSM, pooled over the normally trained
    targets (DI's gain does not reproduce on 32-pixel images: within a point of MI)."""
    normal = grid[(grid["eps255"] == eps255) & (grid["target"] != ADVERSARIAL)]
    rate = pooled(normal[normal["attack"] != "sgm"])  # SGM runs on ResNet-18 alone
    assert rate["mifgsm"] > rate["i_fgsm"] + 0.01
    for attack in ("vmi_fgsm", "vni_fgsm", "ti_fgsm"):
        assert rate[attack] > rate["mifgsm"], (attack, rate.to_dict())
    assert abs(rate["di_fgsm"] - rate["mifgsm"]) < 0.01


def test_the_adversarially_trained_target_resists(grid):
    for (attack, eps), rows in grid.groupby(["attack", "eps255"]):
        adversarial = rows[rows["target"] == ADVERSARIAL]["success_rate"].mean()
        normal = rows[rows["target"] != ADVERSARIAL]["success_rate"].mean()
        assert adversarial < 0.5 * normal, (attack, eps, adversarial, normal)


def test_an_ensemble_surrogate_beats_its_average_member_on_held_out_targets(grid):
    held_out = grid[~grid["target"].isin(MEMBERS)]
    for (attack, eps), rows in held_out.groupby(["attack", "eps255"]):
        if attack == "sgm":
            continue
        ensemble = rows[rows["surrogate"] == ENSEMBLE]["success_rate"].mean()
        member = rows[rows["surrogate"].isin(MEMBERS)].groupby("surrogate")["success_rate"]
        assert ensemble > member.mean().mean(), (attack, eps)
    effect = pd.read_csv(RUN / "ensemble_effect.csv")
    gain = effect.groupby("size")["gain_over_mean_member"].mean()
    assert gain.loc[1] == 0 and (gain.loc[3:] > 0.1).all()
