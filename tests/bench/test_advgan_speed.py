"""AdvGAN's attack time per image against PGD-20's, on the same model and images.

AdvGAN pays for training once; attacking is one forward pass of its generator. The goal
(issue "GANs as attackers and purifiers"): at least 10 times faster per image than PGD-20 at
attack time. Run with ``pytest tests/bench/test_advgan_speed.py --benchmark-enable``; in the
ordinary run each benchmark executes once as a smoke test. Compare the ratio, not times.
"""

from __future__ import annotations

import pytest
import torch

from robustbench_gan.attacks.base import frozen
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

N, EPS = 256, 0.2


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=5, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    advgan = ATTACKS.create("advgan", steps=50).fit(model, digits.x_train, digits.y_train, [EPS])
    return model.eval(), advgan, digits.x_test[:N].contiguous(), digits.y_test[:N].contiguous()


@pytest.mark.parametrize("name", ["advgan", "pgd"])
def test_attack_time(benchmark, setup, name):
    """The attack's own work on one batch (``perturb``: what the leaderboard's ``seconds``
    column times), without the clean and adversarial predictions every call adds."""
    model, advgan, x, y = setup
    attack = advgan if name == "advgan" else ATTACKS.create("pgd", steps=20)
    benchmark.group = "advgan vs pgd-20"
    with frozen(model):
        out = benchmark.pedantic(
            lambda: attack.perturb(model, x, y, EPS, None), rounds=5, warmup_rounds=1
        )
    adv = out[0] if isinstance(out, tuple) else out  # PGD also returns success steps
    assert adv.shape == x.shape
