"""The transfer grid kind (``[transfer_grid]``): surrogate x target success rates with
intervals, ensembles of surrogates as sources, per-image outcomes, TransferAttack's table
and the ensemble effect on held-out targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.common import unbits
from robustbench_gan.evaluations.transfer_settings import EnsembleEffect
from robustbench_gan.models.ensemble import Ensemble
from robustbench_gan.registry import ATTACKS
from robustbench_gan.runner.run import run_suite
from robustbench_gan.suite.load import load_suite

SUITE = """
name = "grid"
seed = 0
[dataset]
name = "digits"
max_train = 400
max_test = 80
[train]
epochs = 8
[eval]
eps = [0, 0.1]
n = 80
[[targets]]
name = "mlp"
hidden = 32
[[targets]]
name = "small_cnn"
width = 8
[[targets]]
name = "lenet"
[[attacks]]
name = "fgsm"
[transfer_grid]
attacks = ["bim", { name = "mifgsm", steps = 5 }]
eps = [0.1, 0.2]
surrogates = [["mlp", "small_cnn"]]
[transfer_grid.ensemble_effect]
attack = "mifgsm"
eps = 0.2
pool = ["mlp", "small_cnn", "lenet"]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("grid")
    (base / "grid.toml").write_text(SUITE)
    out = base / "out"
    run_suite(base / "grid.toml", out=out, cache_dir=base / "cache", device="cpu", progress=False)
    return out


def test_the_grid_holds_every_surrogate_target_pair_with_intervals(run):
    grid = pd.read_csv(run / "transfer_grid.csv")
    # 2 attacks x 2 eps x (3 models + 1 ensemble) x 3 targets
    assert len(grid) == 2 * 2 * 4 * 3
    assert set(grid["surrogate"]) == {"mlp", "small_cnn", "lenet", "mlp & small_cnn"}
    assert (grid["ci_low"] <= grid["success_rate"]).all()
    assert (grid["success_rate"] <= grid["ci_high"]).all()
    white = grid[grid["white_box"]]
    assert set(zip(white["surrogate"], white["target"])) >= {
        ("mlp", "mlp"),
        ("mlp & small_cnn", "small_cnn"),
    }
    # white-box success beats transfer on average (the attack optimizes the surrogate)
    assert white["success_rate"].mean() > grid[~grid["white_box"]]["success_rate"].mean()
    # a larger budget never transfers worse for the same surrogate and target (same steps)
    wide = grid.pivot_table(
        index=["attack", "surrogate", "target"], columns="eps", values="success_rate"
    )
    assert (wide[0.2] >= wide[0.1] - 0.05).all()


def test_per_image_outcomes_give_back_the_rates(run):
    grid = pd.read_csv(run / "transfer_grid.csv")
    images = pd.read_csv(
        run / "transfer_grid_images.csv", dtype={"clean_correct": str, "still_correct": str}
    )
    assert len(images) == len(grid)
    for row, image in zip(grid.itertuples(), images.itertuples()):
        clean, still = unbits(image.clean_correct), unbits(image.still_correct)
        assert len(clean) == 80 and clean.sum() == row.clean_correct
        assert (clean & ~still).sum() == row.fooled


def test_transferattack_table_leaves_white_box_pairs_out(run):
    grid = pd.read_csv(run / "transfer_grid.csv")
    by = pd.read_csv(run / "transfer_by_attack.csv")
    row = by[(by["attack"] == "bim") & (by["eps"] == 0.1) & (by["target"] == "lenet")].iloc[0]
    assert row["surrogates"] == 3  # mlp, small_cnn and their ensemble; not lenet itself
    from_others = grid[
        (grid["attack"] == "bim")
        & (grid["eps"] == 0.1)
        & (grid["target"] == "lenet")
        & ~grid["white_box"]
    ]
    assert row["success_rate"] == pytest.approx(from_others["success_rate"].mean())
    report = (run / "report.md").read_text()
    assert "## Transfer grid" in report and "transfer_grid_bim.png" in report
    assert (run / "plots" / "transfer_grid_mifgsm.png").is_file()
    assert (run / "plots" / "ensemble_effect.png").is_file()


def test_the_ensemble_effect_holds_targets_out_and_compares_the_members(run):
    effect = pd.read_csv(run / "ensemble_effect.csv")
    assert set(effect["size"]) == {1, 2}
    for row in effect.itertuples():
        assert row.target not in row.surrogate.split(" & ")
    singles = effect[effect["size"] == 1]
    assert np.allclose(singles["success_rate"], singles["mean_member_success_rate"])
    pairs = effect[effect["size"] == 2]
    assert len(pairs) == 3  # each model held out once, the other two its surrogates
    assert np.allclose(
        pairs["gain_over_mean_member"], pairs["success_rate"] - pairs["mean_member_success_rate"]
    )


def test_effect_sets_are_shared_between_held_out_targets():
    effect = EnsembleEffect("mifgsm", 0.1, ("a", "b", "c", "d"))
    sets = effect.ensembles()
    assert sets[:4] == [("a",), ("b",), ("c",), ("d",)]
    assert ("b", "c", "d") in sets and ("a", "b", "c") in sets and ("a", "b") in sets
    assert len(sets) == len(set(sets))


@pytest.mark.parametrize(
    "bad, where",
    [
        ('attacks = ["square"]', "transfer_grid.attacks[0]"),
        ('attacks = ["bim"]\nsources = ["nope"]', "transfer_grid.sources[0]"),
        ('attacks = ["bim"]\nsurrogates = [["mlp"]]', "transfer_grid.surrogates[0]"),
        ('attacks = ["bim"]\nfuse = "median"', "transfer_grid.fuse"),
        ('attacks = [{ name = "bim", eps = 0.1 }]', "transfer_grid.attacks[0].eps"),
        ('attacks = [{ name = "mifgsm", targeted = true }]', "transfer_grid.attacks[0].targeted"),
    ],
)
def test_bad_grids_are_refused_up_front(tmp_path, bad, where):
    text = SUITE.split("[transfer_grid]")[0] + f"[transfer_grid]\neps = [0.1]\n{bad}\n"
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_suite(path)
    assert where in str(error.value)


def test_loss_fusion_averages_the_members_losses(tiny_cnn, digits_mlp, digits):
    """An ensemble fusing losses gives attacks the mean of its members' cross-entropies,
    and predicts as the logit average."""
    x, y = digits.x_test[:16], digits.y_test[:16]
    fused = Ensemble([tiny_cnn, digits_mlp], mode="loss")
    loss, logits = fused.cross_entropy(x, y)
    own = [F.cross_entropy(m(x), y, reduction="sum") for m in (tiny_cnn, digits_mlp)]
    assert torch.allclose(loss, torch.stack(own).mean())
    assert torch.equal(logits, Ensemble([tiny_cnn, digits_mlp], mode="logits")(x))
    attack = ATTACKS.create("fgsm")
    grad, _ = attack.gradient_and_logits(fused, x, y, None)
    xs = x.clone().requires_grad_(True)
    mean = sum(F.cross_entropy(m(xs), y, reduction="sum") for m in (tiny_cnn, digits_mlp)) / 2
    (expected,) = torch.autograd.grad(mean, xs)
    assert torch.allclose(grad, expected, atol=1e-6)


def test_compare_tests_the_grid_pairs(run, tmp_path):
    """`rbg compare` tests every grid pair whose success rate moved, on the per-image
    outcomes (McNemar), with the leaderboard's rows; the same run compares clean."""
    import shutil

    from robustbench_gan.publish.compare_stats import compare_statistically

    assert compare_statistically(run, run).changed == []
    other = tmp_path / "other"
    shutil.copytree(run, other)
    images = pd.read_csv(other / "transfer_grid_images.csv", dtype=str, keep_default_na=False)
    row = images.index[(images["surrogate"] == "lenet") & (images["target"] == "mlp")][0]
    images.loc[row, "still_correct"] = "0" * 80  # every clean-correct image now fooled
    images.to_csv(other / "transfer_grid_images.csv", index=False)
    result = compare_statistically(run, other)
    labels = [label for label, _ in result.changed]
    key = "transfer grid: bim from lenet to mlp, eps 0.1"
    assert key in labels or key in [label for label, _ in result.noise]
    change = dict(result.changed + result.noise)[key][0]
    assert change.column == "success_rate" and change.b == 1.0 and "McNemar" in change.how


def test_an_attack_may_name_its_own_surrogates(tmp_path):
    """SGM needs residual surrogates: it names its own, and crafts on those alone."""
    from robustbench_gan.evaluations.transfer_grid import crafted_sources

    text = SUITE.split("[transfer_grid]")[0] + (
        '[transfer_grid]\neps = [0.1]\nattacks = ["bim", { name = "sgm", sources = ["lenet"] }]\n'
    )
    path = tmp_path / "own.toml"
    path.write_text(text)
    settings = load_suite(path).section("transfer_grid")
    crafted = crafted_sources(settings)
    assert crafted["sgm"] == [("lenet",)]
    assert crafted["bim"] == [("mlp",), ("small_cnn",), ("lenet",)]
    path.write_text(text.replace('sources = ["lenet"]', 'sources = ["resnet"]'))
    with pytest.raises(UserError, match="transfer_grid.attacks.1..sources.0."):
        load_suite(path)


def test_the_fusion_changes_only_the_ensembles_cells(tmp_path):
    """`fuse` enters the cell ids of ensemble surrogates alone: a single model's crafting
    stays cached when the fusion changes."""
    from robustbench_gan.runner.plan import build_plan

    def grid_ids(text: str) -> dict[str, str]:
        path = tmp_path / "fuse.toml"
        path.write_text(text)
        plan = build_plan(load_suite(path), "fingerprint")
        return {c.label: c.id for c in plan.cells if c.kind == "transfer_grid"}

    before = grid_ids(SUITE)
    after = grid_ids(
        SUITE.replace(
            'surrogates = [["mlp", "small_cnn"]]',
            'surrogates = [["mlp", "small_cnn"]]\nfuse = "loss"',
        )
    )
    moved = {label for label in before if before[label] != after[label]}
    assert moved == {label for label in before if " & " in label}  # the effect's sets too
    assert any("from mlp & small_cnn" in label for label in moved)
