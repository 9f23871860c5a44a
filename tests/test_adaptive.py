"""The ``adaptive`` attack: AutoAttack's standard list, then the remedy of each indicator of
attack failure that fires. On an honest model it is AutoAttack (same verdict per image, no
remedy, a bounded extra cost); on masked models it runs the right remedy and gets at least
as low as a hand-written adaptive attack."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import Quantized
from torch import nn

from robustbench_gan.api_suite import attack_requests
from robustbench_gan.attacks.remedies import (
    BPDA,
    Expectation,
    FiniteDifferences,
    chosen,
    remedy_of,
)
from robustbench_gan.indicators.probe import margin
from robustbench_gan.registry import ATTACKS

FAST = {"steps": 20, "n_queries": 300}  # AutoAttack's lists, shortened for unit tests


class Noisy(nn.Module):
    """Gaussian noise on the input at every call (a randomized defense)."""

    randomized = True

    def __init__(self, inner, sigma=0.3):
        super().__init__()
        self.inner, self.sigma = inner, sigma

    def forward(self, x):
        return self.inner((x + self.sigma * torch.randn_like(x)).clamp(0, 1))


@pytest.fixture(scope="module")
def data(digits):
    return digits.x_test[:60], digits.y_test[:60]


def bpda_pgd(model, stand_in, x, y, eps, steps=40):
    """Hand-written BPDA: PGD on the stand-in's gradient, judged on the model, keeping the
    first adversarial iterate per image; returns the robust mask."""
    adv, robust = x.clone(), model(x).argmax(1) == y
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        loss = F.cross_entropy(stand_in(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = (x + (adv.detach() + eps / 10 * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1)
        with torch.no_grad():
            robust &= model(adv).argmax(1) == y
    return robust


def test_on_an_honest_model_adaptive_is_autoattack(tiny_cnn, data):
    """AutoAttack's settings (100 steps, 5,000 queries): the same verdict on every image, no
    indicator and no remedy, and at most 10% more passes (the indicators' probes)."""
    x, y = data[0][:40], data[1][:40]
    standard = ATTACKS.create("autoattack")(tiny_cnn, x, y, [0.05])
    attack = ATTACKS.create("adaptive")
    adaptive = attack(tiny_cnn, x, y, [0.05])
    assert torch.equal(adaptive.success, standard.success)
    assert attack.ran == [[]] and attack.fired == [[]]
    cost = adaptive.forward_passes[0] + adaptive.backward_passes[0]
    base = standard.forward_passes[0] + standard.backward_passes[0]
    assert base <= cost <= 1.10 * base, (cost, base)


def test_a_quantized_front_is_broken_through_its_stand_in(tiny_cnn, data):
    x, y = data
    model = Quantized(tiny_cnn).eval()
    standard = ATTACKS.create("autoattack", **FAST)(model, x, y, [0.1])
    attack = ATTACKS.create("adaptive", **FAST)
    adaptive = attack(model, x, y, [0.1])
    assert {"unavailable_gradients", "transfer_failure"} <= set(attack.fired[0])
    assert "bpda" in attack.ran[0]
    by_hand = bpda_pgd(model, tiny_cnn, x, y, 0.1)
    assert (adaptive.success[0] & ~standard.success[0]).any()  # it broke what AutoAttack could not
    assert adaptive.accuracy(y)[0] <= standard.accuracy(y)[0]
    assert adaptive.accuracy(y)[0] <= by_hand.float().mean() + 2 / len(y)
    broke = [attack.parts[i] for i in attack.fooled_by[0].tolist() if i >= 0]
    assert any(remedy_of(part) == "bpda" for part in broke)


def eot_pgd(model, x, y, eps, steps=20, draws=8):
    """Hand-written EOT: every image attacked for all steps on the margin summed over draws,
    the last iterate kept (Athalye et al. 2018)."""
    adv = x.clone()
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        loss = margin(model(adv.repeat(draws, 1, 1, 1)), y.repeat(draws)).sum()
        (grad,) = torch.autograd.grad(loss, adv)
        adv = x + (adv.detach() - 2.5 * eps / steps * grad.sign() - x).clamp(-eps, eps)
        adv = adv.clamp(0, 1)
    return adv.detach()


def correct_share(model, adv, y, draws=40):
    """Per image: the share of the model's draws that classify it right."""
    with torch.no_grad():
        return torch.stack([model(adv).argmax(1) == y for _ in range(draws)]).float().mean(0)


def test_a_randomized_model_gets_eot_and_ends_as_low_as_a_hand_written_eot(tiny_cnn, data):
    """EOT runs, and it does not stop at an example that a few draws still classify right:
    the examples are misclassified on at least as many draws as a hand-written EOT-PGD's
    (every image attacked for all its steps), per image on average within 3 points."""
    x, y = data
    model = Noisy(tiny_cnn, sigma=0.2).eval()
    attack = ATTACKS.create("adaptive", **FAST)
    torch.manual_seed(0)
    result = attack(model, x, y, [0.1])
    assert "unstable_predictions" in attack.fired[0]
    assert "eot" in attack.ran[0]
    torch.manual_seed(1)
    ours = correct_share(model, result.adv[0], y).mean()
    hand = correct_share(model, eot_pgd(model, x, y, 0.1), y).mean()
    assert ours <= hand + 0.03, (float(ours), float(hand))


def test_expectation_averages_the_draws_in_the_graph(tiny_cnn, data):
    x = data[0][:8].clone().requires_grad_(True)
    view = Expectation(tiny_cnn, 3)
    assert torch.allclose(view(x), tiny_cnn(x), atol=1e-6)  # a deterministic model
    (grad,) = torch.autograd.grad(view(x).sum(), x)
    (want,) = torch.autograd.grad(tiny_cnn(x).sum(), x)
    assert torch.allclose(grad, want, atol=1e-6)
    torch.manual_seed(0)
    noisy = Expectation(Noisy(tiny_cnn), 64)
    with torch.no_grad():  # 64 draws vary far less than one
        spread = (noisy(x) - noisy(x)).abs().mean()
        single = (Noisy(tiny_cnn)(x) - Noisy(tiny_cnn)(x)).abs().mean()
    assert spread < single / 3, (float(spread), float(single))


class TwoFaced(nn.Module):
    """A model that answers a gradient request with another network (as Defense-GAN's naive
    evaluation does): BPDA must still give the deployed outputs."""

    def __init__(self, deployed, shown):
        super().__init__()
        self.deployed, self.shown = deployed, shown

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return self.shown(x)
        return self.deployed(x)


def test_remedies_follow_the_indicators():
    assert chosen([], has_stand_in=True, margin_usable=True) == []
    assert chosen(["unavailable_gradients"], has_stand_in=True, margin_usable=True) == ["bpda"]
    # no stand-in: BPDA and the transfer cannot run; a usable margin gradient takes over
    fired = ["unavailable_gradients", "transfer_failure"]
    assert chosen(fired, has_stand_in=False, margin_usable=True) == ["margin"]
    assert chosen(fired, has_stand_in=False, margin_usable=False) == []
    fired = ["incomplete_optimization", "unstable_predictions", "outputs_probabilities"]
    assert chosen(fired, has_stand_in=False, margin_usable=True) == ["margin", "eot", "restarts"]
    unstable = ["unstable_predictions"]  # a deterministic rugged model: smoothing, not EOT
    assert chosen(unstable, has_stand_in=False, margin_usable=True, randomized=False) == [
        "smoothing"
    ]
    assert (
        chosen(["acc_rises_with_eps", "near_chance"], has_stand_in=True, margin_usable=True) == []
    )


def test_the_views_keep_the_model_outputs_and_change_only_the_gradient(tiny_cnn, data):
    x = data[0][:8].clone().requires_grad_(True)
    model = Quantized(tiny_cnn).eval()
    view = BPDA(model, tiny_cnn)
    assert torch.equal(view(x), model(x))
    (grad,) = torch.autograd.grad(view(x).sum(), x)
    (want,) = torch.autograd.grad(tiny_cnn(x).sum(), x)
    assert torch.allclose(grad, want) and grad.abs().sum() > 0
    shown = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 10))
    two = BPDA(TwoFaced(model, shown), tiny_cnn)
    with torch.no_grad():
        deployed = model(x)
    assert torch.equal(two(x), deployed)
    smooth = FiniteDifferences(tiny_cnn, 0.01, pairs=256, seed=0)
    assert torch.equal(smooth(x), tiny_cnn(x))
    (estimate,) = torch.autograd.grad(smooth(x).sum(), x)
    again = torch.autograd.grad(FiniteDifferences(tiny_cnn, 0.01, 256, seed=0)(x).sum(), x)[0]
    assert torch.equal(estimate, again)  # seeded
    cosine = F.cosine_similarity(estimate.flatten(1), want.flatten(1))
    assert (cosine > 0.5).all(), cosine  # a smooth model: near its true gradient
    with torch.no_grad():
        assert torch.equal(smooth(x), tiny_cnn(x))


def test_adaptive_is_a_preset_of_benchmark_and_eval():
    assert attack_requests("adaptive", "linf") == [("adaptive", "adaptive", {"norm": "linf"})]
    assert ATTACKS.preset("adaptive") == ("adaptive", {})


def test_a_randomized_model_is_judged_by_the_majority_of_its_draws(tiny_cnn, data):
    from robustbench_gan.attacks.remedies import Majority

    x = data[0][:16]
    votes = Majority(tiny_cnn, 5)(x)
    assert torch.equal(votes.argmax(1), tiny_cnn(x).argmax(1))
    assert (votes.sum(1) == 5).all()
    torch.manual_seed(0)
    noisy = Majority(Noisy(tiny_cnn, sigma=0.3), 7)(x)
    assert (noisy.sum(1) == 7).all() and (noisy.max(1).values >= 2).all()
    judge = Majority(tiny_cnn, 3)
    assert torch.equal(judge.fooled(x, data[1][:16]), tiny_cnn(x).argmax(1) != data[1][:16])
    right = (tiny_cnn(x).argmax(1) == data[1][:16]).long()
    assert torch.equal(judge.correct_votes(x, data[1][:16]), 3 * right)


def measured(n: int, incomplete: int):
    """A batch's measurements on ``n`` robust images, ``incomplete`` of them with the
    probe's loss still falling, nothing else wrong."""
    from robustbench_gan.attacks.escalation import Staged
    from robustbench_gan.indicators.checks import BudgetChecks, ModelChecks

    no = torch.zeros(n, dtype=torch.bool)
    checks = ModelChecks(
        correct=~no, ce_zero=no, margin_zero=no, instability=torch.zeros(n),
        unbounded_robust=no, nondeterministic=False, outputs_probabilities=False,
        non_finite=False, naive=False,
    )  # fmt: skip
    still = torch.arange(n) < incomplete
    return Staged((), nn.Identity(), checks, BudgetChecks(still, no, None))


def test_indicators_are_decided_over_the_budget_not_the_batch(tiny_cnn):
    """One image still improving among the 7 robust ones of a last small batch is no evidence
    of incomplete optimization (its Wilson interval is above 1% on its own), two of 107 are
    not either: the verdict over the budget's images is the one kept, whatever the batch size
    (the digits' honest CNN raised a false alarm in batches of 256)."""
    attack = ATTACKS.create("adaptive")
    assert attack.decide(tiny_cnn, [measured(7, 1)]) == ["restarts"]
    assert attack.decide(tiny_cnn, [measured(100, 1), measured(7, 1)]) == []
    assert attack.decide(tiny_cnn, [measured(100, 6), measured(7, 1)]) == ["restarts"]


def test_a_stand_in_with_the_deployed_outputs_is_crafted_on_alone(tiny_cnn):
    """A stand-in that says its outputs are the model's, averaged over 2 draws, is attacked
    without BPDA around it, and EOT takes half the draws of it."""

    class View(nn.Module):
        deployed_draws = 2

        def forward(self, x):
            return tiny_cnn(x)

    attack, view = ATTACKS.create("adaptive"), View()
    assert attack.view("bpda", tiny_cnn, view, 0.1) is view
    eot = attack.view("eot", tiny_cnn, view, 0.1)
    assert isinstance(eot, Expectation) and eot.model is view and eot.draws == 10
    assert isinstance(attack.view("bpda", tiny_cnn, nn.Identity(), 0.1), BPDA)
