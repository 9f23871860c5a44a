"""The indicators of attack failure (Pintor et al. 2022) and the sanity checks, one scheme:
gradient masking, probabilities, randomness, incomplete optimization, transfer and silent
success are caught, and honest models fire none."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch
from conftest import Quantized
from torch import nn

from robustbench_gan.attacks.base import Attack
from robustbench_gan.contract.schema import upgrade_board
from robustbench_gan.evaluations.attack import silent_successes
from robustbench_gan.evaluations.audit import AuditResult, BudgetAudit, row_indicators
from robustbench_gan.evaluations.common import bits
from robustbench_gan.indicators import INDICATORS
from robustbench_gan.indicators.checks import (
    budget_checks,
    model_checks,
    model_indicators,
    wilson_low,
)
from robustbench_gan.indicators.probe import incomplete, probe


@pytest.fixture(scope="module")
def trained(digits, digits_mlp):
    return digits_mlp, digits.x_test[:200], digits.y_test[:200]


class Softmaxed(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).softmax(1)


class Hot(nn.Module):
    """Logits times 10,000: softmax saturates, the cross-entropy gradient is exactly zero."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) * 1e4


class Noisy(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x + 0.05 * torch.randn_like(x))


def fired(model, x, y):
    return model_indicators(model_checks(model, x, y, seed=0))


def test_an_honest_model_fires_no_indicator(trained):
    model, x, y = trained
    checks = model_checks(model, x, y, seed=0)
    assert model_indicators(checks) == []
    assert float(checks.unbounded_robust.float().mean()) <= 0.05
    assert float(checks.instability[checks.correct].max()) < 0.05  # the threshold is 0.1
    for eps in (0.1, 0.3):
        found = budget_checks(model, x, y, "linf", eps)
        assert found.transfer_fooled is None  # no stand-in declared
        assert not found.incomplete.any()


@pytest.mark.parametrize(
    "wrapper, expected",
    [
        (Softmaxed, "outputs_probabilities"),
        (Quantized, "unavailable_gradients"),
        (Quantized, "unconstrained_attack_failure"),
        (Noisy, "unstable_predictions"),
        (Hot, "unavailable_gradients"),
        (Hot, "unconstrained_attack_failure"),  # PGD on cross-entropy sees nothing either
    ],
)
def test_masked_models_fire_the_right_indicator(trained, wrapper, expected):
    model, x, y = trained
    assert expected in fired(wrapper(model).eval(), x, y)
    assert expected in INDICATORS


def test_saturated_logits_keep_their_margin_gradient(trained):
    """A scale-invariant loss still sees the hot model: the remedy the scheme names."""
    model, x, y = trained
    checks = model_checks(Hot(model).eval(), x, y, seed=0)
    assert checks.ce_zero[checks.correct].float().mean() > 0.9
    assert not checks.margin_zero.any()
    assert "unstable_predictions" not in model_indicators(checks)  # scale-free metric


def test_a_transfer_from_the_stand_in_fools_what_the_white_box_probe_cannot(trained):
    model, x, y = trained
    quantized = Quantized(model).eval()
    correct = quantized(x).argmax(1) == y
    found = budget_checks(quantized, x, y, "linf", 0.3)
    assert not (found.white_fooled & correct).any()  # zero gradients: the probe never moves
    assert found.transfer_fooled is not None
    assert (found.transfer_fooled & correct).sum() > 0.5 * correct.sum()


def test_the_probe_stays_in_the_ball_and_is_deterministic(trained):
    model, x, y = trained
    first, again = probe(model, x, y, 0.1, "linf"), probe(model, x, y, 0.1, "linf")
    assert torch.equal(first.adv, again.adv)
    assert (first.adv - x).abs().max() <= 0.1 + 1e-6
    assert first.adv.min() >= 0 and first.adv.max() <= 1
    assert (first.trace[1:] <= first.trace[:-1]).all()  # the best so far never rises
    assert torch.equal(first.fooled, first.fooled & first.fooled_on_path)
    l2 = probe(model, x, y, 1.0, "l2")
    assert (l2.adv - x).flatten(1).norm(dim=1).max() <= 1.0 + 1e-5


def test_incomplete_optimization_is_a_loss_still_falling_at_the_end():
    steps = torch.arange(101, dtype=torch.float32)
    converged = torch.exp(-steps / 5)  # flat long before the last 10 steps
    falling = 1 - steps / 100  # still falling by 10% of its range over the last 10
    constant = torch.ones(101)
    traces = torch.stack([converged, falling, constant], dim=1)
    assert incomplete(traces).tolist() == [False, True, False]


def test_the_share_of_unstable_images_needs_its_interval_above_one_percent():
    assert wilson_low(1, 19) < 0.01 < wilson_low(2, 19)
    assert wilson_low(15, 1000) < 0.01 < wilson_low(20, 1000)
    assert wilson_low(0, 0) == 0.0


class Returns(Attack):
    """Passes through an adversarial point at step 1, returns the clean image."""

    def perturb(self, model, x, y, eps, target_class):
        return x.clone(), torch.ones(len(x), dtype=torch.long)


def test_silent_success_is_an_image_fooled_on_the_path_but_not_at_the_end(trained):
    model, x, y = trained
    result = Returns()(model, x, y, [0.1])
    silent = silent_successes(result, 0)
    correct = result.pred[0] == y
    assert silent == bits(correct)  # every correctly classified image was "fooled" at step 1
    assert silent_successes(replace(result, success_step=None), 0) == ""


def frame(rows):
    base = {"target": "m", "defense": "none", "norm": "linf", "clean_acc": 0.9, "_black_box": False,
            "_model": "m"}  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def audit(indicators=(), budgets=(), n=4):
    return AuditResult(
        zero_gradient_share=0.0, margin_zero_share=0.0, unstable_share=0.0, unbounded_acc=0.0,
        outputs_probabilities=False, nondeterministic=False, indicators=list(indicators),
        correct="1" * n, unavailable="0" * n, unstable="0" * n, unbounded_robust="0" * n,
        budgets=list(budgets),
    )  # fmt: skip


def test_row_indicators():
    rows = frame(
        [
            {"attack": "pgd", "eps": 0.0, "robust_acc": 0.9},
            {"attack": "pgd", "eps": 0.1, "robust_acc": 0.5},
            {"attack": "pgd", "eps": 0.2, "robust_acc": 0.6},  # rises
            {"attack": "square", "eps": 0.0, "robust_acc": 0.8, "_black_box": True},  # != clean
            {"attack": "square", "eps": 0.1, "robust_acc": 0.3, "_black_box": True},  # beats pgd
            {"attack": "square", "eps": 0.2, "robust_acc": 0.2, "_black_box": True},
        ]
    )
    marks = row_indicators(rows, {"m": audit(["unavailable_gradients"])})
    assert marks[2] == "acc_rises_with_eps;black_box_beats_white_box;unavailable_gradients"
    assert marks[3] == "eps0_not_clean;black_box_beats_white_box;unavailable_gradients"
    assert marks[1] == "black_box_beats_white_box;unavailable_gradients"
    assert marks[0] == "black_box_beats_white_box;unavailable_gradients"  # 0.8 < 0.9 at eps 0
    assert row_indicators(rows.iloc[:3], {}).tolist() == ["", "", "acc_rises_with_eps"]


def test_budget_indicators_mark_the_rows_of_their_budget():
    """Transfer failure: the stand-in's examples fool an image this row left robust; silent
    success: the row's attack passed an adversarial point on an image it left robust;
    incomplete optimization: the probe's loss still fell on images it left robust."""
    budget = BudgetAudit(norm="linf", eps=0.1, incomplete="1000", white_fooled="0000",
                         transfer_fooled="0110")  # fmt: skip
    rows = frame(
        [
            {"attack": "a", "eps": 0.1, "robust_acc": 0.5, "_correct": "1001", "_silent": ""},
            {"attack": "b", "eps": 0.1, "robust_acc": 0.5, "_correct": "0101", "_silent": "0001"},
            {"attack": "b", "eps": 0.2, "robust_acc": 0.5, "_correct": "0101", "_silent": "0001"},
        ]
    )
    marks = row_indicators(rows, {"m": audit(budgets=[budget])}).tolist()
    assert marks[0] == "incomplete_optimization"  # images 1, 2 transferred; row broke them
    assert marks[1] == "incomplete_optimization;transfer_failure;silent_success"
    assert marks[2] == ""  # no audit at eps 0.2


def test_unstable_predictions_need_an_image_the_attack_left_robust():
    """Instability is noise sensitivity until an attack fails: a row fires it only when its
    images left robust are unstable (beyond the share's interval), so a non-robust model
    whose every image the attack broke passes; a model whose forward passes differ fires it
    on every row, and an audit stored with the old model-level list is read the new way."""
    n = 400
    unstable = "1" * 100 + "0" * 300  # a quarter of the images move under noise
    budget = BudgetAudit(norm="linf", eps=0.1, incomplete="0" * n, white_fooled="0" * n)
    old = replace(audit(["unstable_predictions"], [budget], n=n), unstable=unstable)
    rows = frame(
        [
            {"attack": "a", "eps": 0.0, "robust_acc": 0.9, "_correct": "1" * n},
            {"attack": "a", "eps": 0.1, "robust_acc": 0.0, "_correct": "0" * n},  # all broken
            {"attack": "b", "eps": 0.1, "robust_acc": 0.5, "_correct": "0" * 200 + "1" * 200},
            {"attack": "c", "eps": 0.1, "robust_acc": 0.5, "_correct": "1" * 200 + "0" * 200},
            {"attack": "d", "eps": 0.1, "robust_acc": 0.1, "_correct": "0" * 399 + "1"},
        ]
    )
    marks = row_indicators(rows, {"m": old}).tolist()
    assert marks == ["", "", "", "unstable_predictions", ""]  # d left a stable image
    randomized = replace(old, nondeterministic=True)
    assert all(m == "unstable_predictions" for m in row_indicators(rows, {"m": randomized}))


def test_near_chance_clean_accuracy_is_flagged():
    rows = pd.DataFrame(
        [
            {"target": t, "defense": "none", "attack": "fgsm", "norm": "linf", "eps": 0.0,
             "clean_acc": acc, "robust_acc": acc, "_black_box": False}
            for t, acc in (("good", 0.9), ("broken", 0.12))
        ]
    )  # fmt: skip
    assert row_indicators(rows, {}, num_classes=10).tolist() == ["", "near_chance"]
    assert row_indicators(rows, {}).tolist() == ["", ""]  # unknown number of classes


def test_an_older_leaderboard_reads_under_the_new_names():
    old = pd.DataFrame({"robust_acc": [0.5, 0.4, 0.3],
                        "flags": ["", "zero_gradients;near_chance", float("nan")]})  # fmt: skip
    new = upgrade_board(old)
    assert "flags" not in new
    assert new["indicators"].iloc[1] == "unavailable_gradients;near_chance"
    assert new["indicators"].iloc[0] == "" and pd.isna(new["indicators"].iloc[2])
    assert upgrade_board(new) is new


def test_every_name_the_code_writes_has_a_meaning():
    from robustbench_gan.contract.schema import RENAMED_INDICATORS

    assert set(RENAMED_INDICATORS.values()) <= set(INDICATORS)
    for name in ("invalid_output", "projected_output", "silent_success", "transfer_failure",
                 "incomplete_optimization", "naive_evaluation", "non_finite_outputs"):  # fmt: skip
        assert name in INDICATORS


def test_a_results_folder_written_before_the_rename_still_publishes(tmp_path):
    from robustbench_gan.publish.checks import read_leaderboard_file

    header = (
        "suite,dataset,target,defense,attack,attack_params,norm,eps,n_eval,clean_acc,"
        "robust_acc,attack_success_rate,mean_linf,mean_l2,seconds,device,seed,flags,"
        "versions,cell_id"
    )
    row = 's,digits,m,none,pgd,"{}",linf,0.1,10,0.9,0.5,0.4,0.1,0.5,1.0,cpu,0,nondeterministic,v,c'
    path = tmp_path / "leaderboard.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    board = read_leaderboard_file(path)
    assert board["indicators"].tolist() == ["unstable_predictions"]


def test_per_image_indicators_cover_the_probed_images_only():
    """samples.csv: the audit checks the first images (PROBED); later ones carry none, and a
    transfer and instability mark only an image no attack broke (instability every image of
    a randomized model)."""
    from robustbench_gan.evaluations.audit import image_indicators

    budget = BudgetAudit(norm="linf", eps=0.1, incomplete="0000", white_fooled="0000",
                         transfer_fooled="0110")  # fmt: skip
    checked = audit(budgets=[budget])
    checked = replace(checked, unavailable="1000")
    samples = pd.DataFrame(
        {
            "target": "m",
            "defense": "none",
            "norm": "linf",
            "eps": 0.1,
            "image": range(6),
            "robust": [1, 1, 0, 1, 1, 1],
        }  # fmt: skip
    )
    marks = image_indicators(samples, {"m": checked}, {("m", "none"): "m"}).tolist()
    assert marks == ["unavailable_gradients", "transfer_failure", "", "", "", ""]
    unstable = replace(checked, unstable="1010")  # image 2 unstable but broken: no mark
    marks = image_indicators(samples, {"m": unstable}, {("m", "none"): "m"}).tolist()
    assert marks[:3] == ["unavailable_gradients;unstable_predictions", "transfer_failure", ""]
    randomized = replace(unstable, nondeterministic=True, unstable="1111")
    marks = image_indicators(samples, {"m": randomized}, {("m", "none"): "m"}).tolist()
    assert all("unstable_predictions" in m for m in marks[:4]) and marks[4:] == ["", ""]
