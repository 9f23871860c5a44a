"""Minimal-perturbation attacks (DeepFool, C&W L2) and the black-box Square Attack.

A tiny CNN is trained on scikit-learn's digits once per module; the properties
checked are the ones a researcher would: DeepFool fools nearly everything when
unbounded, C&W finds smaller L2 perturbations than DeepFool, a minimal attack
runs once for a list of budgets, Square never asks for a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN
from torch import Tensor, nn

from robustbench_gan.attacks import Attack, AttackResult
from robustbench_gan.registry import ATTACKS

UNBOUNDED = {"l2": 100.0, "linf": 1.0}  # larger than any image difference in [0, 1]^64
BUDGETS = {"l2": [0.0, 0.25, 0.5, 1.0, 2.0], "linf": [0.0, 0.05, 0.1, 0.2, 0.3]}


@dataclass
class Setup:
    model: TinyCNN
    x: Tensor
    y: Tensor


@pytest.fixture(scope="module")
def setup(digits) -> Setup:
    torch.manual_seed(0)
    x_tr, y_tr = digits.x_train, digits.y_train
    model = TinyCNN(mean=float(x_tr.mean()), std=float(x_tr.std()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        for idx in torch.randperm(len(x_tr)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    x, y = digits.x_test[:120], digits.y_test[:120]
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() >= 0.9
    return Setup(model, x, y)


def sizes(adv: Tensor, x: Tensor, norm: str) -> Tensor:
    delta = (adv - x).flatten(1)
    return delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)


def assert_in_balls(attack: Attack, result: AttackResult, x: Tensor) -> None:
    for eps, adv in zip(result.eps, result.adv):
        assert sizes(adv, x, attack.norm).max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1


def assert_accuracy_does_not_rise(result: AttackResult, y: Tensor) -> None:
    acc = result.accuracy(y)
    assert torch.all(acc[1:] <= acc[:-1]), acc


# -- DeepFool ---------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_unbounded_fools_nearly_all(setup: Setup, norm: str) -> None:
    attack = ATTACKS.create("deepfool", norm=norm)
    assert attack.norm == norm and attack.minimal
    result = attack(setup.model, setup.x, setup.y, UNBOUNDED[norm])
    correct = result.clean_pred == setup.y
    assert result.success[0][correct].float().mean() >= 0.98


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_cut_to_budgets_stays_in_balls(setup: Setup, norm: str) -> None:
    attack = ATTACKS.create("deepfool", norm=norm)
    result = attack(setup.model, setup.x, setup.y, BUDGETS[norm])
    assert_in_balls(attack, result, setup.x)
    assert_accuracy_does_not_rise(result, setup.y)
    assert result.accuracy(setup.y)[-1] < 0.5


def test_deepfool_is_untargeted_only() -> None:
    with pytest.raises(ValueError, match="targeted"):
        ATTACKS.create("deepfool", targeted=True)


# -- C&W L2 ---------------------------------------------------------------------------
def test_cw_l2_perturbations_not_larger_than_deepfool(setup: Setup) -> None:
    deepfool = ATTACKS.create("deepfool")(setup.model, setup.x, setup.y, UNBOUNDED["l2"])
    cw = ATTACKS.create("cw_l2")(setup.model, setup.x, setup.y, UNBOUNDED["l2"])
    both = deepfool.success[0] & cw.success[0] & (cw.clean_pred == setup.y)
    assert both.float().mean() >= 0.9
    l2_deepfool = sizes(deepfool.adv[0], setup.x, "l2")[both].median()
    l2_cw = sizes(cw.adv[0], setup.x, "l2")[both].median()
    assert l2_cw <= l2_deepfool, (l2_cw, l2_deepfool)


def test_targeted_cw_l2_hits_target(setup: Setup) -> None:
    x, y = setup.x[:32], setup.y[:32]
    target_class = (y + 1) % 10
    attack = ATTACKS.create("cw_l2", targeted=True)
    result = attack(setup.model, x, y, UNBOUNDED["l2"], target_class=target_class)
    assert torch.equal(result.success[0], result.pred[0] == target_class)
    assert result.success.float().mean() >= 0.9


# -- minimal attacks run once for a list of budgets ------------------------------------
@pytest.mark.parametrize("name", ["deepfool", "cw_l2"])
def test_minimal_attack_runs_once_for_all_budgets(
    setup: Setup, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = {"binary_search_steps": 4} if name == "cw_l2" else {}
    attack = ATTACKS.create(name, **kwargs)
    x, y = setup.x[:32], setup.y[:32]
    calls = []
    perturb = attack.perturb

    def counting(*args: object) -> object:
        calls.append(args[3])  # eps
        return perturb(*args)

    monkeypatch.setattr(attack, "perturb", counting)
    result = attack(setup.model, x, y, BUDGETS[attack.norm])
    assert calls == [float("inf")]
    assert len(set(result.seconds)) == 1
    assert_in_balls(attack, result, x)
    assert_accuracy_does_not_rise(result, y)


# -- Square -------------------------------------------------------------------------
class NoBackward(torch.autograd.Function):
    """Identity whose backward pass fails the test."""

    @staticmethod
    def forward(ctx: object, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:
        raise AssertionError("a black-box attack ran a backward pass")


class ScoresOnly(nn.Module):
    """The model behind a guard: records whether gradients were enabled at each query."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.grad_enabled: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.model(NoBackward.apply(x))


def test_square_lowers_accuracy_without_gradients(setup: Setup) -> None:
    guarded = ScoresOnly(setup.model)
    attack = ATTACKS.create("square")
    assert attack.black_box and attack.norm == "linf"
    result = attack(guarded, setup.x, setup.y, [0.0, 0.1])
    acc = result.accuracy(setup.y)
    assert acc[1] <= acc[0] - 0.2, acc
    assert guarded.grad_enabled and not any(guarded.grad_enabled)
    assert_in_balls(attack, result, setup.x)


def test_square_same_seed_same_result(setup: Setup) -> None:
    x, y = setup.x[:60], setup.y[:60]
    runs = [
        ATTACKS.create("square", n_queries=200, seed=s)(setup.model, x, y, 0.1) for s in (3, 3, 4)
    ]
    assert torch.equal(runs[0].adv, runs[1].adv)
    assert torch.equal(runs[0].success_step, runs[1].success_step)
    assert not torch.equal(runs[0].adv, runs[2].adv)


def test_square_success_step_marks_failures(setup: Setup) -> None:
    n_queries = 300
    result = ATTACKS.create("square", n_queries=n_queries)(setup.model, setup.x, setup.y, 0.1)
    step, success = result.success_step[0], result.success[0]
    assert torch.equal(step == -1, ~success)
    assert step.max() <= n_queries
    clean_wrong = result.clean_pred != setup.y
    assert torch.all(step[clean_wrong] == 0)
    assert torch.all(step[~clean_wrong & success] >= 1)
    assert success.any() and not success.all()
