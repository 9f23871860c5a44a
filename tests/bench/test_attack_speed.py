"""Native attacks against ART, foolbox and torchattacks on the same model, batch and settings.

Run: ``pytest tests/bench --benchmark-enable`` (or ``tox -e bench``, which installs
torchattacks); in the ordinary test run each benchmark executes once, as a smoke test (the
MNIST- and CIFAR-sized cases then on 8 images and 2 steps, digits on 32 images), and the
torchattacks ones skip unless it is installed. Compare ratios, not times.

Same semantics on both sides: a native call returns adversarial images, predictions on them
and the success mask; the clean predictions are computed once beforehand and passed as
``clean_pred`` (as the evaluation shares them across attacks). A peer's time is its attack
plus one prediction pass on its output, what a user runs to get robust accuracy.

Three sizes: ``digits`` (small_cnn trained on 8x8 digits, 256 images), ``mnist`` (a
conv-pool-conv-pool-fc CNN on 28x28x1, 256 images) and ``cifar`` (torchvision's ResNet-18 with
10 classes on 32x32x3, 32 images). The last two use random weights and random images labelled
with the model's own predictions, and budgets at which some images stay robust to the end,
so every attack runs all its steps (checked after each native run; fooled images may leave
the native batch early, which is part of what is measured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS
from robustbench_gan.utils import predict


@dataclass(frozen=True)
class Size:
    """One benchmark size: the images, the budgets, the steps of the iterative attacks."""

    n: int
    shape: tuple[int, int, int]
    linf: float
    l2: float
    steps: int
    smoke_n: int = 8
    smoke_steps: int = 2


SIZES = {
    "digits": Size(256, (1, 8, 8), linf=0.1, l2=1.0, steps=20, smoke_n=32, smoke_steps=20),
    "mnist": Size(256, (1, 28, 28), linf=0.005, l2=0.2, steps=20),
    "cifar": Size(32, (3, 32, 32), linf=4 / 255, l2=0.25, steps=10),
}
CW_STEPS, CW_CONST, CW_LR = 50, 1.0, 0.1
STEPS: Any = object()  # stands for the size's steps


def mnist_cnn() -> nn.Module:
    """conv(16)-pool-conv(32)-pool-fc(128)-fc(10) on 28x28x1."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


@dataclass
class Setup:
    model: nn.Module
    x: Tensor
    y: Tensor
    clean_pred: Tensor
    name: str
    size: Size
    steps: int

    def eps(self, norm: str) -> float:
        return self.size.linf if norm == "linf" else self.size.l2

    def filled(self, kwargs: dict, scaled: tuple[str, ...], norm: str) -> dict:
        """``kwargs`` with STEPS replaced by the size's steps and ``scaled`` keys times eps."""
        out = {k: self.steps if v is STEPS else v for k, v in kwargs.items()}
        return {k: v * self.eps(norm) if k in scaled else v for k, v in out.items()}


def smoke_only(config: pytest.Config) -> bool:
    """Whether benchmarks only run once (the ordinary test run)."""
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="module")
def models(digits):
    torch.manual_seed(0)
    small = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=5, lr=3e-3)
    train_classifier(small, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    import torchvision

    return {
        "digits": (small.eval(), digits.x_test, digits.y_test),
        "mnist": (mnist_cnn().eval(), None, None),
        "cifar": (torchvision.models.resnet18(num_classes=10).eval(), None, None),
    }


@pytest.fixture(scope="module", params=list(SIZES))
def setup(request, models) -> Setup:
    size = SIZES[request.param]
    smoke = smoke_only(request.config)
    n, steps = (size.smoke_n, size.smoke_steps) if smoke else (size.n, size.steps)
    model, x, y = models[request.param]
    if x is None:
        x = torch.rand((n, *size.shape), generator=torch.Generator().manual_seed(0))
    x = x[:n].contiguous()
    clean_pred = predict(model, x)
    y = clean_pred.clone() if y is None else y[:n].contiguous()
    return Setup(model, x, y, clean_pred, request.param, size, steps)


# -- one runner per library; each returns a zero-argument call to time -----------------
def native(name: str, ball: str = "linf", **kwargs) -> Callable:
    def make(s: Setup) -> Callable:
        attack = ATTACKS.create(name, **s.filled(kwargs, (), ball))
        return lambda: attack(s.model, s.x, s.y, [s.eps(ball)], clean_pred=s.clean_pred)

    return make


def then_predict(model: nn.Module, attack: Callable[[], Tensor]) -> Callable[[], Tensor]:
    """The peer's attack, then one prediction pass on its output (robust accuracy)."""
    return lambda: predict(model, torch.as_tensor(attack()))


def art(cls_name: str, ball: str = "linf", **kwargs) -> Callable:
    def make(s: Setup) -> Callable:
        import art.attacks.evasion as evasion
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(
            model=s.model,
            loss=torch.nn.CrossEntropyLoss(),
            input_shape=tuple(s.x.shape[1:]),
            nb_classes=10,
            clip_values=(0.0, 1.0),
        )
        attack = getattr(evasion, cls_name)(
            classifier, batch_size=len(s.x), **s.filled(kwargs, ("eps", "eps_step"), ball)
        )
        xs, ys = s.x.numpy(), np.eye(10, dtype=np.float32)[s.y.numpy()]
        return then_predict(s.model, lambda: attack.generate(xs, ys))

    return make


def foolbox(cls_name: str, ball: str | None = "linf", **kwargs) -> Callable:
    def make(s: Setup) -> Callable:
        import foolbox as fb

        fmodel = fb.PyTorchModel(s.model, bounds=(0, 1))
        attack = getattr(fb.attacks, cls_name)(**s.filled(kwargs, (), ball or "l2"))
        epsilons = None if ball is None else [s.eps(ball)]
        run = lambda: attack(fmodel, s.x, s.y, epsilons=epsilons)[1][0]  # noqa: E731
        return then_predict(s.model, run)

    return make


def torchattacks(cls_name: str, ball: str = "linf", **kwargs) -> Callable:
    def make(s: Setup) -> Callable:
        ta = pytest.importorskip("torchattacks")
        attack = getattr(ta, cls_name)(s.model, **s.filled(kwargs, ("eps", "alpha"), ball))
        return then_predict(s.model, lambda: attack(s.x, s.y))

    return make


# eps and step sizes are given as fractions of the size's eps, STEPS as the size's steps
PGD_ART = {"eps": 1.0, "max_iter": STEPS, "num_random_init": 1, "verbose": False}
CASES: dict[str, dict[str, Callable]] = {
    "fgsm": {
        "native": native("fgsm"),
        "art": art("FastGradientMethod", eps=1.0),
        "foolbox": foolbox("FGSM"),
        "torchattacks": torchattacks("FGSM", eps=1.0),
    },
    "pgd_linf": {
        "native": native("pgd", steps=STEPS, rel_stepsize=0.1),
        "art": art("ProjectedGradientDescent", eps_step=0.1, **PGD_ART),
        "foolbox": foolbox("LinfPGD", steps=STEPS, rel_stepsize=0.1),
        "torchattacks": torchattacks("PGD", eps=1.0, alpha=0.1, steps=STEPS),
    },
    "pgd_l2": {
        "native": native("pgd", "l2", norm="l2", steps=STEPS, rel_stepsize=0.1),
        "art": art("ProjectedGradientDescent", "l2", norm=2, eps_step=0.1, **PGD_ART),
        "foolbox": foolbox("L2PGD", "l2", steps=STEPS, rel_stepsize=0.1),
        "torchattacks": torchattacks("PGDL2", "l2", eps=1.0, alpha=0.1, steps=STEPS),
    },
    "cw_l2": {
        "native": native(
            "cw_l2",
            "l2",
            steps=CW_STEPS,
            binary_search_steps=1,
            initial_const=CW_CONST,
            lr=CW_LR,
            abort_early=False,
        ),  # fmt: skip
        "art": art(
            "CarliniL2Method",
            max_iter=CW_STEPS,
            binary_search_steps=1,
            initial_const=CW_CONST,
            learning_rate=CW_LR,
            verbose=False,
        ),  # fmt: skip
        "foolbox": foolbox(
            "L2CarliniWagnerAttack",
            None,
            steps=CW_STEPS,
            binary_search_steps=1,
            initial_const=CW_CONST,
            stepsize=CW_LR,
            abort_early=False,
        ),  # fmt: skip
        "torchattacks": torchattacks("CW", c=CW_CONST, steps=CW_STEPS, lr=CW_LR),
    },
    "apgd_ce": {
        "native": native("apgd_ce", steps=STEPS),
        "art": art(
            "AutoProjectedGradientDescent",
            eps=1.0,
            eps_step=2.0,
            max_iter=STEPS,
            nb_random_init=1,
            loss_type="cross_entropy",
            verbose=False,
        ),  # fmt: skip
        "torchattacks": torchattacks("APGD", eps=1.0, steps=STEPS, loss="ce"),
    },
}
#: the larger sizes compare with torchattacks and ART only (foolbox's and C&W's times on
#: digits already tell their story); ART's C&W is 20 times slower and left out there
ON_DIGITS_ONLY = {("cw_l2", "art"), ("cw_l2", "foolbox"), ("cw_l2", "native")}
ON_DIGITS_ONLY |= {("cw_l2", "torchattacks")} | {(g, "foolbox") for g in CASES}
ITERATIVE = ("pgd_linf", "pgd_l2", "apgd_ce")
PAIRS = [(group, lib) for group, libs in CASES.items() for lib in libs]


@pytest.mark.parametrize("group, library", PAIRS, ids=[f"{g}-{lib}" for g, lib in PAIRS])
def test_attack_speed(benchmark, setup, request, group, library):
    size_name = setup.name
    if size_name != "digits" and (group, library) in ON_DIGITS_ONLY:
        pytest.skip("compared on digits only")
    benchmark.group = f"{size_name}-{group}"
    benchmark.extra_info["library"] = library
    run = CASES[group][library](setup)
    out = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    if library == "native":
        benchmark.extra_info["robust_acc"] = float(out.accuracy(setup.y)[0])
        benchmark.extra_info["forward_passes"] = out.forward_passes[0]
        benchmark.extra_info["backward_passes"] = out.backward_passes[0]
    if library == "native" and group in ITERATIVE and not smoke_only(request.config):
        # some image stays robust to the last step: the attack did all its steps
        assert (out.success_step < 0).any(), "every image fooled early; lower the budget"
