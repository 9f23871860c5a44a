"""Gradient attacks beyond FGSM and PGD: FGM, BIM, MI-FGSM, APGD-CE and APGD-DLR.

The generic properties (eps 0, ball and box, monotone, seeds, model restored) are
checked for every registered attack in test_attacks.py; here, the properties
that set these attacks apart, on a LeNet trained on the digits once per module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.attacks import Attack, AttackResult
from robustbench_gan.attacks.apgd import apgd_checkpoints
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

STEPS = 20  # for the iterative attacks whose default is longer


@dataclass
class Setup:
    model: nn.Module
    x: Tensor
    y: Tensor


@pytest.fixture(scope="module")
def setup(digits) -> Setup:
    mean, std = float(digits.x_train.mean()), float(digits.x_train.std())
    torch.manual_seed(0)
    model = CLASSIFIERS.create("lenet", in_shape=digits.shape, mean=[mean], std=[std])
    config = TrainConfig(epochs=8, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    x, y = digits.x_test, digits.y_test
    assert accuracy(model, x, y) >= 0.9, "test model too weak"
    return Setup(model, x, y)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def robust_acc(setup: Setup, name: str, eps: float | list[float], **kwargs: object) -> Tensor:
    return ATTACKS.create(name, **kwargs)(setup.model, setup.x, setup.y, eps).accuracy(setup.y)


def assert_in_l2_ball(result: AttackResult, x: Tensor) -> None:
    for eps, adv in zip(result.eps, result.adv):
        assert (adv - x).flatten(1).norm(dim=1).max().item() <= eps + 1e-5
        assert adv.min() >= 0 and adv.max() <= 1


# -- FGM ------------------------------------------------------------------------------
def test_fgm_stays_in_l2_ball_and_lowers_accuracy(setup: Setup) -> None:
    attack = ATTACKS.create("fgm")
    assert attack.norm == "l2"
    result = attack(setup.model, setup.x, setup.y, [0.5, 1.0, 2.0])
    assert_in_l2_ball(result, setup.x)
    acc = result.accuracy(setup.y)
    assert torch.all(acc[1:] <= acc[:-1]), acc
    assert acc[-1] <= accuracy(setup.model, setup.x, setup.y) - 0.5, acc


def test_targeted_fgm_moves_toward_the_target(setup: Setup) -> None:
    target_class = (setup.y + 1) % 10
    attack = ATTACKS.create("fgm", targeted=True)
    result = attack(setup.model, setup.x, setup.y, 2.0, target_class=target_class)
    hit = (result.pred[0] == target_class).float().mean()
    assert hit > (result.clean_pred == target_class).float().mean()


# -- BIM and MI-FGSM --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bim", "mifgsm"])
def test_iterated_fgsm_at_least_as_strong_as_fgsm(setup: Setup, name: str) -> None:
    fgsm = robust_acc(setup, "fgsm", [0.1, 0.2])
    ours = robust_acc(setup, name, [0.1, 0.2])
    assert torch.all(ours <= fgsm + 0.01), (ours, fgsm)


def test_bim_follows_the_paper_schedule() -> None:
    """Kurakin et al.: min(eps + 4, 1.25 eps) steps of 1/255, eps on the 0-255 scale."""
    steps, rel = ATTACKS.create("bim").schedule(16 / 255)
    assert steps == 20 and rel * 16 / 255 == pytest.approx(1 / 255)
    assert ATTACKS.create("bim").schedule(4 / 255)[0] == 5
    assert ATTACKS.create("bim", steps=10).schedule(0.1) == (10, pytest.approx(0.125))


def test_mifgsm_without_momentum_is_bim(setup: Setup) -> None:
    """With decay 0 the normalized gradient's sign is the gradient's sign."""
    x, y = setup.x[:64], setup.y[:64]
    mi = ATTACKS.create("mifgsm", decay=0.0)(setup.model, x, y, 0.1)
    bim = ATTACKS.create("bim", steps=10, rel_stepsize=0.1)(setup.model, x, y, 0.1)
    assert torch.equal(mi.adv, bim.adv)


# -- APGD -----------------------------------------------------------------------------
def test_apgd_checkpoints_follow_the_paper() -> None:
    """p = 0, .22, .41 (+.19), .57 (+.16), .70 (+.13), .80 (+.10), .87 (+.07), .93, .99
    (+.06 from then on), and ceil(p * N) of each."""
    assert apgd_checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(20) == [0, 5, 9, 12, 14, 16, 18, 19, 20]
    for n in (1, 3, 7, 50):
        w = apgd_checkpoints(n)
        assert w[0] == 0 and w[-1] <= n and w == sorted(set(w))


def test_apgd_ce_at_least_as_strong_as_pgd(setup: Setup) -> None:
    """Same iterations and eps; the mean over two seeds, as one random start is noisy."""
    seeds = (0, 1)
    pgd = np.mean([robust_acc(setup, "pgd", 0.1, steps=STEPS, seed=s).item() for s in seeds])
    apgd = np.mean([robust_acc(setup, "apgd_ce", 0.1, steps=STEPS, seed=s).item() for s in seeds])
    assert apgd <= pgd + 0.005, (apgd, pgd)


def test_apgd_dlr_lowers_accuracy(setup: Setup) -> None:
    acc = robust_acc(setup, "apgd_dlr", [0.1, 0.2], steps=STEPS)
    assert acc[0] <= robust_acc(setup, "fgsm", 0.1).item() + 0.01, acc
    assert acc[1] <= 0.05, acc


def test_targeted_apgd_dlr_reaches_the_target(setup: Setup) -> None:
    target_class = (setup.y + 1) % 10
    attack = ATTACKS.create("apgd_dlr", targeted=True, steps=STEPS)
    result = attack(setup.model, setup.x, setup.y, 0.4, target_class=target_class)
    assert torch.equal(result.success[0], result.pred[0] == target_class)
    assert result.success.float().mean() >= 0.9


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_dlr"])
def test_l2_apgd_stays_in_l2_ball(setup: Setup, name: str) -> None:
    attack = ATTACKS.create(name, norm="l2", steps=STEPS)
    assert attack.norm == "l2"
    result = attack(setup.model, setup.x, setup.y, [0.5, 1.0, 2.0])
    assert_in_l2_ball(result, setup.x)
    acc = result.accuracy(setup.y)
    assert torch.all(acc[1:] <= acc[:-1]) and acc[-1] <= 0.05, acc


def test_dlr_loss_ignores_shift_and_scale_of_logits() -> None:
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    y, target_class = torch.arange(16) % 10, (torch.arange(16) + 3) % 10
    for targeted, t in ((False, None), (True, target_class)):
        dlr = ATTACKS.create("apgd_dlr", targeted=targeted).loss
        assert torch.allclose(dlr(3 * logits + 5, y, t), dlr(logits, y, t), atol=1e-5)


# -- success steps -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("bim", {}),
        ("mifgsm", {}),
        ("apgd_ce", {"steps": STEPS}),
        ("apgd_ce", {"steps": 5, "restarts": 3}),
        ("apgd_dlr", {"steps": STEPS, "norm": "l2"}),
        ("apgd_dlr", {"steps": STEPS, "targeted": True}),
    ],
)
def test_success_step_marks_exactly_the_successes(setup: Setup, name: str, kwargs: dict) -> None:
    attack: Attack = ATTACKS.create(name, **kwargs)
    target_class = (setup.y + 1) % 10 if attack.targeted else None
    eps = [0.5, 1.5] if attack.norm == "l2" else [0.05, 0.1]
    result = attack(setup.model, setup.x, setup.y, eps, target_class=target_class)
    assert result.success_step is not None and result.success_step.shape == result.success.shape
    assert torch.equal(result.success_step >= 0, result.success)
    assert result.success_step.min() >= -1
