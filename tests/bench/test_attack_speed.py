"""Native attacks against ART, foolbox and torchattacks on the same model, batch and settings.

Run: ``pytest tests/bench --benchmark-enable`` (or ``tox -e bench``, which installs
torchattacks); in the ordinary test run each benchmark executes once, as a smoke test, and
the torchattacks ones skip unless it is installed. Compare ratios, not times.

The native calls also do what the peers' ``generate`` does not: predictions on the clean
and the adversarial images (two extra forward passes) and the success mask.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from robustbench_gan.models.train import TrainConfig, train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

N, STEPS = 256, 20
LINF, L2 = 0.1, 1.0
REL_STEP = 0.1  # step = 0.1 * eps for PGD
CW_STEPS, CW_CONST, CW_LR = 50, 1.0, 0.1


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=5, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    return model.eval(), digits.x_test[:N].contiguous(), digits.y_test[:N].contiguous()


# -- one runner per library; each returns a zero-argument call to time -----------------
def native(name: str, eps: float, **kwargs) -> Callable:
    def make(model, x, y):
        attack = ATTACKS.create(name, **kwargs)
        return lambda: attack(model, x, y, [eps])

    return make


def art(cls_name: str, **kwargs) -> Callable:
    def make(model, x, y):
        import art.attacks.evasion as evasion
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(
            model=model,
            loss=torch.nn.CrossEntropyLoss(),
            input_shape=tuple(x.shape[1:]),
            nb_classes=10,
            clip_values=(0.0, 1.0),
        )
        attack = getattr(evasion, cls_name)(classifier, batch_size=N, **kwargs)
        xs, ys = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
        return lambda: attack.generate(xs, ys)

    return make


def foolbox(cls_name: str, eps: float | None, **kwargs) -> Callable:
    def make(model, x, y):
        import foolbox as fb

        fmodel = fb.PyTorchModel(model, bounds=(0, 1))
        attack = getattr(fb.attacks, cls_name)(**kwargs)
        return lambda: attack(fmodel, x, y, epsilons=None if eps is None else [eps])

    return make


def torchattacks(cls_name: str, **kwargs) -> Callable:
    def make(model, x, y):
        ta = pytest.importorskip("torchattacks")
        attack = getattr(ta, cls_name)(model, **kwargs)
        return lambda: attack(x, y)

    return make


CASES = {
    "fgsm": {
        "native": native("fgsm", LINF),
        "art": art("FastGradientMethod", eps=LINF),
        "foolbox": foolbox("FGSM", LINF),
        "torchattacks": torchattacks("FGSM", eps=LINF),
    },
    "pgd20_linf": {
        "native": native("pgd", LINF, steps=STEPS, rel_stepsize=REL_STEP),
        "art": art(
            "ProjectedGradientDescent",
            eps=LINF,
            eps_step=REL_STEP * LINF,
            max_iter=STEPS,
            num_random_init=1,
            verbose=False,
        ),  # fmt: skip
        "foolbox": foolbox("LinfPGD", LINF, steps=STEPS, rel_stepsize=REL_STEP),
        "torchattacks": torchattacks("PGD", eps=LINF, alpha=REL_STEP * LINF, steps=STEPS),
    },
    "pgd20_l2": {
        "native": native("pgd", L2, norm="l2", steps=STEPS, rel_stepsize=REL_STEP),
        "art": art(
            "ProjectedGradientDescent",
            norm=2,
            eps=L2,
            eps_step=REL_STEP * L2,
            max_iter=STEPS,
            num_random_init=1,
            verbose=False,
        ),  # fmt: skip
        "foolbox": foolbox("L2PGD", L2, steps=STEPS, rel_stepsize=REL_STEP),
        "torchattacks": torchattacks("PGDL2", eps=L2, alpha=REL_STEP * L2, steps=STEPS),
    },
    "cw_l2": {
        "native": native(
            "cw_l2",
            L2,
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
        "native": native("apgd_ce", LINF, steps=STEPS),
        "art": art(
            "AutoProjectedGradientDescent",
            eps=LINF,
            eps_step=2 * LINF,
            max_iter=STEPS,
            nb_random_init=1,
            loss_type="cross_entropy",
            verbose=False,
        ),  # fmt: skip
        "torchattacks": torchattacks("APGD", eps=LINF, steps=STEPS, loss="ce"),
    },
}
PAIRS = [(group, lib) for group, libs in CASES.items() for lib in libs]


@pytest.mark.parametrize("group, library", PAIRS, ids=[f"{g}-{lib}" for g, lib in PAIRS])
def test_attack_speed(benchmark, setup, group, library):
    benchmark.group = group
    benchmark.extra_info["library"] = library
    run = CASES[group][library](*setup)
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
