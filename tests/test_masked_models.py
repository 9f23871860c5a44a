"""Masked defenses with a known answer (issue 27), on the 8x8 digits: thermometer encoding
(Buckman et al. 2018), k-winners-take-all (Xiao et al. 2020) and logits scaled by a large
temperature (defensive distillation's stand-in, Papernot et al. 2016).

Each hides its gradients, so the project's PGD (cross-entropy, the model's own gradient)
leaves most images standing, and each falls to an adaptive attack written here in plain
torch, the one the literature broke it with: BPDA through the soft code (Athalye et al.
2018), PGD on a gradient of the logit margin estimated by Gaussian finite differences
(Tramèr et al. 2020), PGD on the logit margin (Carlini and Wagner 2016). Every attack keeps
its examples in the eps-ball and in [0, 1]; an image counts as robust only if no iterate
fools the true model. The numbers in comments were measured with seed 0, one thread.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.contract.surface import declares_randomized, gradient_approximation
from robustbench_gan.errors import UserError
from robustbench_gan.models.kwta import KWinnersTakeAll
from robustbench_gan.models.thermometer import soft_thermometer_code, thermometer_code
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS, DEFENSES
from robustbench_gan.utils import predict

EPS = 0.2
STEPS = 40
CONFIG = TrainConfig(epochs=10, lr=5e-3, batch_size=32)

Gradient = Callable[[Tensor, Tensor, torch.Generator], Tensor]


def trained(data, name: str, **params) -> nn.Module:
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        name, in_shape=data.shape, num_classes=10, mean=data.mean, std=data.std, **params
    )
    train_classifier(model, data.x_train, data.y_train, config=CONFIG, seed=0, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def thermometer(digits) -> nn.Module:
    return trained(digits, "thermometer_cnn", width=8)


@pytest.fixture(scope="module")
def kwta(digits) -> nn.Module:
    return trained(digits, "kwta_cnn", width=16, hidden=128)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return float((predict(model, x) == y).float().mean())


def naive_pgd(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """The project's PGD-20 (cross-entropy, the model's own gradient, a random start)."""
    return float(ATTACKS.create("pgd", steps=20)(model, x, y, [EPS]).accuracy(y)[0])


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """True-class logit minus the best other one: below zero, the image is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return true - others.amax(1)


def margin_gradient(model: nn.Module) -> Gradient:
    """The input gradient of ``model``'s logit margin (for BPDA: a stand-in's)."""

    def gradient(x: Tensor, y: Tensor, rng: torch.Generator) -> Tensor:
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(margin(model(x), y).sum(), x)
        return grad

    return gradient


def pgd(model: nn.Module, x: Tensor, y: Tensor, gradient: Gradient, steps: int = STEPS) -> float:
    """L-inf PGD descending the margin along ``gradient``'s sign from a random start, step
    ``2.5 eps / steps``; the robust accuracy of the true ``model`` over all iterates."""
    rng = torch.Generator().manual_seed(0)
    robust = predict(model, x) == y
    adv = (x + EPS * (2 * torch.rand(x.shape, generator=rng) - 1)).clamp(0, 1)
    for _ in range(steps):
        robust &= predict(model, adv) == y
        on = robust.nonzero().squeeze(1)  # an image once fooled is done
        if len(on) == 0:
            break
        step = 2.5 * EPS / steps * gradient(adv[on], y[on], rng).sign()
        adv[on] = torch.min(torch.max(adv[on] - step, x[on] - EPS), x[on] + EPS).clamp(0, 1)
        assert (adv - x).abs().amax() <= EPS + 1e-6 and 0 <= adv.min() and adv.max() <= 1
    robust &= predict(model, adv) == y
    return float(robust.float().mean())


def check_outputs(model: nn.Module, x: Tensor) -> None:
    logits = model(x)
    assert logits.shape == (len(x), 10) and torch.isfinite(logits).all()


def zero_gradient_share(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """The share of correctly classified images whose cross-entropy input gradient is 0."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    correct = predict(model, x.detach()) == y
    return float((grad[correct].flatten(1).abs().amax(1) == 0).float().mean())


# thermometer encoding ----------------------------------------------------------------


def test_thermometer_code_is_a_step_and_the_soft_code_a_ramp():
    x = torch.tensor([0.0, 0.3, 0.5, 1.0]).view(4, 1, 1, 1)
    hard = thermometer_code(x, 4).flatten(1)  # bit i: x > i / 4
    assert hard.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    soft = soft_thermometer_code(x, 4).flatten(1)
    torch.testing.assert_close(soft.sum(1), 4 * x.flatten())  # the bits sum to levels * x
    assert torch.equal(soft[[0, 2, 3]], hard[[0, 2, 3]])  # on bin edges, the same code
    rgb = thermometer_code(torch.rand(2, 3, 5, 7), 16)
    assert rgb.shape == (2, 48, 5, 7)
    with pytest.raises(ValueError, match="levels"):
        CLASSIFIERS.create("thermometer_cnn", in_shape=(1, 8, 8), levels=1)


def test_thermometer_hides_its_gradient_and_bpda_finds_it(digits, thermometer):
    x, y = digits.x_test, digits.y_test
    check_outputs(thermometer, x)
    assert not declares_randomized(thermometer)
    assert accuracy(thermometer, x, y) > 0.85  # measured 0.911 on the 360 test images
    assert zero_gradient_share(thermometer, x, y) == 1.0  # the code's gradient is 0
    soft = gradient_approximation(thermometer)
    assert soft is not None and accuracy(soft, x, y) > 0.85  # the stand-in is close: 0.911
    naive = naive_pgd(thermometer, x, y)  # measured 0.842: only the random start moves
    adaptive = pgd(thermometer, x, y, margin_gradient(soft))  # measured 0.025
    assert naive > 0.5 and adaptive < 0.1 and adaptive < naive - 0.4, (naive, adaptive)


# k-winners-take-all ------------------------------------------------------------------


def test_kwta_keeps_the_k_largest_units_of_a_layer():
    layer = KWinnersTakeAll(0.25)
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5, 4.0, -1.0, 2.0, 0.0]])
    assert layer(x).tolist() == [[0, 0, 3.0, 0, 4.0, 0, 0, 0]]  # k = 2 of 8
    volume = torch.randn(3, 4, 5, 5)
    kept = (KWinnersTakeAll(0.1)(volume) != 0).flatten(1).sum(1)
    assert kept.tolist() == [10, 10, 10]  # across channels and positions, per sample
    assert KWinnersTakeAll(0.01)(torch.randn(2, 5)).count_nonzero(1).tolist() == [1, 1]
    with pytest.raises(ValueError, match="sparsity"):
        CLASSIFIERS.create("kwta_cnn", in_shape=(1, 8, 8), sparsity=0.0)


def es_margin_gradient(model: nn.Module, sigma: float, pairs: int) -> Gradient:
    """Tramèr et al.'s k-WTA attack: the margin's gradient estimated from ``pairs`` of
    antithetic Gaussian finite differences of scale ``sigma`` (the gradient of the margin
    smoothed by N(0, sigma^2) noise), forward passes only, blind to the discontinuities."""

    def gradient(x: Tensor, y: Tensor, rng: torch.Generator) -> Tensor:
        u = torch.randn(pairs, *x.shape, generator=rng)  # all samples in one batch
        points = torch.cat([x + sigma * u, x - sigma * u]).flatten(0, 1)
        with torch.no_grad():
            values = margin(model(points), y.repeat(2 * pairs)).view(2, pairs, len(x))
        return ((values[0] - values[1]).view(pairs, len(x), 1, 1, 1) * u).sum(0)

    return gradient


def test_kwta_misleads_pgd_and_a_smoothed_gradient_breaks_it(digits, kwta):
    x, y = digits.x_test, digits.y_test
    check_outputs(kwta, x)
    assert not declares_randomized(kwta) and gradient_approximation(kwta) is None
    assert accuracy(kwta, x, y) > 0.9  # measured 0.958
    x, y = x[:120], y[:120]  # the estimator's forward passes: the first 120 images
    naive = naive_pgd(kwta, x, y)  # measured 0.300
    own = pgd(kwta, x, y, margin_gradient(kwta))  # the same PGD on its own gradient: 0.192
    adaptive = pgd(kwta, x, y, es_margin_gradient(kwta, sigma=0.1, pairs=24))  # 0.025
    assert adaptive < 0.1 and adaptive < naive - 0.2 and adaptive < own - 0.1, (
        naive,
        own,
        adaptive,
    )


# temperature-scaled logits -----------------------------------------------------------


def test_temperature_saturates_the_softmax_and_a_margin_loss_ignores_it(digits, tiny_cnn):
    x, y = digits.x_test, digits.y_test
    model = DEFENSES.create("temperature").build([tiny_cnn])
    check_outputs(model, x)
    assert model.classifier is tiny_cnn and model.num_classes == 10
    assert gradient_approximation(model) is tiny_cnn and not declares_randomized(model)
    assert torch.equal(predict(model, x), predict(tiny_cnn, x))  # the same decisions
    assert accuracy(model, x, y) > 0.9  # measured 0.975
    assert zero_gradient_share(model, x, y) > 0.95  # measured 1.0
    assert zero_gradient_share(tiny_cnn, x, y) == 0.0  # unscaled: never exactly zero
    naive = naive_pgd(model, x, y)  # measured 0.967
    undefended = naive_pgd(tiny_cnn, x, y)  # the same PGD on the bare classifier: 0.008
    adaptive = pgd(model, x, y, margin_gradient(model))  # measured 0.008
    assert naive > 0.5 and adaptive < 0.05 and adaptive <= undefended + 0.02


def test_temperature_wraps_one_classifier_and_refuses_a_scale_below_one(tiny_cnn):
    with pytest.raises(UserError, match="exactly one"):
        DEFENSES.create("temperature").build([tiny_cnn, tiny_cnn])
    with pytest.raises(ValueError, match="scale"):
        DEFENSES.create("temperature", scale=0.5)
    assert DEFENSES.create("temperature", scale=10).build([tiny_cnn]).scale == 10.0
