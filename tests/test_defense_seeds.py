"""Seeds reach every defense that draws random numbers: each takes ``seed`` as a keyword
(the runner passes the suite's seed to every defense that accepts it), equal seeds give
identical draws whatever the global stream, and different seeds different ones."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.registry import CLASSIFIERS, DEFENSES, GENERATORS

#: defenses that draw no random numbers, so take no seed
DETERMINISTIC = {"ensemble", "fgsm_at", "input_quantization", "jpeg_front", "temperature"}
#: inference-time defenses that draw at every forward pass (their seeded draws are tested with
#: them: tests/test_defense_gan.py, tests/test_masked_fronts.py)
RANDOMIZED_MODELS = {"defense_gan", "random_resize_pad", "random_noise"}
#: seeded training defenses that add noise, not an eps-ball's examples (their seeded draws are
#: tested with them: tests/test_certify.py)
SEEDED_NOISE = {"gaussian_augment"}
#: the seeded training defenses, and how to get the examples each one trains on
SEEDED_TRAINING: dict[str, Callable[[object, nn.Module, Tensor, Tensor], Tensor]] = {
    "pgd_at": lambda d, m, x, y: d.adversarial_examples(m, x, y),
    "fgsm_rs": lambda d, m, x, y: d.adversarial_examples(m, x, y),
    "ensemble_at": lambda d, m, x, y: d.adversarial_examples(m, x, y),
    "gan_augment": lambda d, m, x, y: d.adversarial.adversarial_examples(m, x, y),
    "gan_adversarial_training": lambda d, m, x, y: d.adversarial_examples(m, x, y),
    "trades": lambda d, m, x, y: d.adversarial_examples(m, x),
}


def mlp(data, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return CLASSIFIERS.create("mlp", in_shape=data.shape, num_classes=10).eval()


@pytest.fixture(scope="module")
def runtime_inputs(digits) -> dict[str, dict]:
    """Each defense's runtime inputs (untrained models do: only the draws matter here)."""
    torch.manual_seed(0)
    cgan = GENERATORS.create("cdcgan", in_shape=digits.shape, num_classes=10, ngf=8, ndf=8)
    return {
        "pgd_at": {"steps": 3},
        "trades": {"steps": 3},
        "ensemble_at": {"static_models": [mlp(digits, 1)], "attack": "pgd"},
        "gan_augment": {"generator": cgan.eval(), "attack": "pgd", "attack_params": {"steps": 3}},
        "gan_adversarial_training": {"width": 4},
    }


def test_every_defense_that_draws_random_numbers_takes_a_seed():
    for name in DEFENSES.list():
        parameters = inspect.signature(DEFENSES.get(name)).parameters
        if name in DETERMINISTIC:
            continue
        assert "seed" in parameters, name
        assert parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters["seed"].default == 0, name
    everything = set(SEEDED_TRAINING) | RANDOMIZED_MODELS | SEEDED_NOISE | DETERMINISTIC
    assert everything == set(DEFENSES.list())


@pytest.mark.parametrize("name", sorted(SEEDED_TRAINING))
def test_training_draws_follow_the_seed(digits, runtime_inputs, name):
    model = mlp(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]

    def draws(seed: int, global_seed: int) -> Tensor:
        torch.manual_seed(global_seed)  # the draws must not come from the global stream
        defense = DEFENSES.create(name, eps=0.1, seed=seed, **runtime_inputs.get(name, {}))
        torch.manual_seed(global_seed + 100)
        return SEEDED_TRAINING[name](defense, model, x, y)

    first = draws(0, global_seed=1)
    assert torch.equal(first, draws(0, global_seed=2))
    assert not torch.equal(first, draws(1, global_seed=1))
    assert (first - x).abs().amax() <= 0.1 + 1e-6  # the examples stay in the ball


def test_pgd_at_random_start_follows_the_seed(digits):
    x = digits.x_train[:16]

    def start(seed: int) -> Tensor:
        attack = DEFENSES.create("pgd_at", eps=0.1, steps=1, seed=seed).attack
        return attack._random_delta(x, 0.1)

    assert torch.equal(start(0), start(0))
    assert not torch.equal(start(0), start(1))


def test_defense_gan_restarts_follow_the_seed(digits):
    torch.manual_seed(0)
    gan = GENERATORS.create("dcgan", in_shape=digits.shape, nz=8, ngf=8, ndf=8).eval()
    x = digits.x_test[:8]

    def projection(seed: int) -> Tensor:
        defense = DEFENSES.create("defense_gan", generator=gan, steps=2, restarts=2, seed=seed)
        return defense.build([mlp(digits)]).project(x)

    assert torch.equal(projection(0), projection(0))
    assert not torch.equal(projection(0), projection(1))
