"""Native FGSM and PGD against ART and foolbox on the same model, batch and settings.

Run: ``pytest tests/bench --benchmark-enable`` (or ``tox -e bench``); in the ordinary test
run each benchmark executes once, as a smoke test. Compare the ratios, not the times.

The native calls also do what ART's and foolbox's ``generate`` do not: predictions on the
clean and the adversarial images (two extra forward passes) and the success mask.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_gan.models.train import TrainConfig, train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

EPS, STEPS, REL_STEP = 0.1, 20, 0.1
N = 256


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    train_classifier(
        model,
        digits.x_train,
        digits.y_train,
        config=TrainConfig(epochs=5, lr=3e-3),
        seed=0,
        progress=False,
    )
    return model.eval(), digits.x_test[:N].contiguous(), digits.y_test[:N].contiguous()


def art_classifier(model):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )


@pytest.mark.benchmark(group="fgsm")
def test_fgsm_native(benchmark, setup):
    model, x, y = setup
    attack = ATTACKS.create("fgsm")
    benchmark(attack, model, x, y, [EPS])


@pytest.mark.benchmark(group="fgsm")
def test_fgsm_art(benchmark, setup):
    from art.attacks.evasion import FastGradientMethod

    model, x, y = setup
    attack = FastGradientMethod(art_classifier(model), eps=EPS, batch_size=N)
    xs, ys = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
    benchmark(attack.generate, xs, ys)


@pytest.mark.benchmark(group="pgd20")
def test_pgd_native(benchmark, setup):
    model, x, y = setup
    attack = ATTACKS.create("pgd", steps=STEPS, rel_stepsize=REL_STEP)
    benchmark(attack, model, x, y, [EPS])


@pytest.mark.benchmark(group="pgd20")
def test_pgd_art(benchmark, setup):
    from art.attacks.evasion import ProjectedGradientDescent

    model, x, y = setup
    attack = ProjectedGradientDescent(
        art_classifier(model),
        eps=EPS,
        eps_step=REL_STEP * EPS,
        max_iter=STEPS,
        batch_size=N,
        verbose=False,
    )
    xs, ys = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
    benchmark(attack.generate, xs, ys)


@pytest.mark.benchmark(group="pgd20")
def test_pgd_foolbox(benchmark, setup):
    import foolbox as fb

    model, x, y = setup
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(steps=STEPS, abs_stepsize=REL_STEP * EPS, random_start=True)
    benchmark(attack, fmodel, x, y, epsilons=[EPS])
