"""AutoAttack's cost side by side: the project's ``standard`` and ``fast`` versions, the
reference code (``pyautoattack``, an optional peer: skipped when absent) and torchattacks, on
one model, images and budget, in CPU time (the machine is shared: wall time is noise).

Run: ``pytest tests/bench/test_autoattack_cost.py --benchmark-enable`` (tox -e bench). Each
case records, in the benchmark's extra info, the robust accuracy and the forward and backward
passes per image counted at the model's boundary (utils.PassCounter), so the ratios that
matter (passes, CPU time) read off one table. In the ordinary test run each case executes
once on 24 images with 10 steps and 100 queries, as a smoke test. The issue's measurements on
a PGD-trained MNIST CNN and on cifar_net are in tests/bench/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS
from robustbench_gan.utils import PassCounter

EPS = 0.1


def smoke_only(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="module")
def setup(request, digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=5, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    smoke = smoke_only(request.config)
    n = 24 if smoke else 256
    settings = {"steps": 10, "n_queries": 100} if smoke else {"steps": 100, "n_queries": 5000}
    return model.eval(), digits.x_test[:n].contiguous(), digits.y_test[:n], settings


def ours(version: str) -> Callable:
    def make(model: nn.Module, x: Tensor, y: Tensor, settings: dict) -> Callable[[], Tensor]:
        attack = ATTACKS.create("autoattack", version=version, **settings)
        return lambda: attack(model, x, y, [EPS]).pred[0]

    return make


def reference(model: nn.Module, x: Tensor, y: Tensor, settings: dict) -> Callable[[], Tensor]:
    aa = pytest.importorskip("pyautoattack.autoattack")
    attack = aa.AutoAttack(model, eps=EPS, norm="Linf", version="standard", seed=0)
    attack.verbose = False
    for part in (attack.apgd, attack.apgd_targeted, attack.fab):
        part.n_iter = settings["steps"]
    attack.square.n_queries = settings["n_queries"]

    def run() -> Tensor:
        adv, _ = attack.run_standard_evaluation(x, y, batch_size=256)
        with torch.no_grad():
            return model(adv).argmax(1)

    return run


def torchattacks(model: nn.Module, x: Tensor, y: Tensor, settings: dict) -> Callable[[], Tensor]:
    ta = pytest.importorskip("torchattacks")
    attack = ta.AutoAttack(model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0)
    for part in attack._autoattack.attacks:  # APGD, APGD-T, FAB, Square (its APGD: 10 steps)
        if hasattr(part, "steps"):
            part.steps = settings["steps"]
        if hasattr(part, "n_queries"):
            part.n_queries = settings["n_queries"]

    def run() -> Tensor:
        with torch.no_grad():
            return model(attack(x, y)).argmax(1)

    return run


CASES = {
    "standard": ours("standard"),
    "fast": ours("fast"),
    "reference": reference,
    "torchattacks": torchattacks,
}


@pytest.mark.benchmark(group="autoattack", timer=time.process_time)
@pytest.mark.parametrize("case", list(CASES))
def test_autoattack_cost(benchmark, setup, case):
    model, x, y, settings = setup
    run = CASES[case](model, x, y, settings)
    counter = PassCounter()
    with counter.watching(model):
        pred = benchmark.pedantic(run, rounds=1, iterations=1)
    with torch.no_grad():
        clean = model(x).argmax(1)
    robust = float((pred == y).float().mean())
    assert robust <= float((clean == y).float().mean())  # no attack makes a model better
    benchmark.extra_info.update(
        robust_accuracy=robust,
        forward_per_image=counter.forward / len(x),
        backward_per_image=counter.backward / len(x),
    )
