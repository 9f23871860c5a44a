"""AdvGAN (attack) and gan_adversarial_training (defense) on digits, without MNIST files."""

from __future__ import annotations

import pytest
import torch
from conftest import TinyCNN, train_tiny_cnn

from robustbench_gan.attacks.base import margin_loss
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, DEFENSES

FAST = {"steps": 150, "train_batch_size": 64, "width": 8}


@pytest.fixture(scope="module")
def setup(digits):
    return train_tiny_cnn(digits.x_train, digits.y_train), digits


@pytest.fixture(scope="module")
def fitted(setup):
    model, data = setup
    return ATTACKS.create("advgan", **FAST).fit(model, data.x_train, data.y_train, [0.1, 0.3])


def test_adversarial_examples_stay_in_the_ball_and_box(setup, fitted):
    model, data = setup
    x, y = data.x_test, data.y_test
    result = fitted(model, x, y, [0.0, 0.1, 0.3])
    assert torch.equal(result.adv[0], x) and torch.equal(result.pred[0], result.clean_pred)
    for eps, adv in zip(result.eps[1:], result.adv[1:]):
        assert (adv - x).abs().amax() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    acc = result.accuracy(y)
    assert acc[0] > 0.9 and acc[2] < acc[0] - 0.3  # a learned attack, not noise


def test_attack_time_is_one_forward_pass(setup, fitted):
    model, data = setup
    result = fitted(model, data.x_test, data.y_test, [0.3])
    pgd = ATTACKS.create("pgd", steps=20)(model, data.x_test, data.y_test, [0.3])
    assert fitted.train_seconds > 0
    # timing is noisy here; the benchmark (tests/bench) states the ratio, this only the order
    assert result.seconds[0] < pgd.seconds[0]


def test_unfitted_budget_is_an_error(setup, fitted):
    model, data = setup
    with pytest.raises(RuntimeError, match="fit"):
        fitted(model, data.x_test[:8], data.y_test[:8], [0.2])


def test_same_seed_same_generator(setup):
    model, data = setup
    x, y = data.x_train[:256], data.y_train[:256]
    runs = [
        ATTACKS.create("advgan", **{**FAST, "steps": 20}).fit(model, x, y, [0.2])(
            model, data.x_test, data.y_test, [0.2]
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adv, runs[1].adv)


def test_model_left_as_found(setup):
    model, data = setup
    model.train()
    try:
        attack = ATTACKS.create("advgan", **{**FAST, "steps": 5})
        attack.fit(model, data.x_train[:128], data.y_train[:128], [0.2])
        attack(model, data.x_test[:16], data.y_test[:16], [0.2])
        assert model.training and all(p.requires_grad for p in model.parameters())
        assert all(p.grad is None for p in model.parameters())
    finally:
        model.eval()


def test_black_box_setting_distils_a_surrogate(setup):
    model, data = setup
    queried = []
    original = model.forward

    def counting(x):
        queried.append(torch.is_grad_enabled() and x.requires_grad)
        return original(x)

    model.forward = counting
    try:
        attack = ATTACKS.create("advgan", surrogate="distilled", distill_epochs=3, **FAST)
        attack.fit(model, data.x_train, data.y_train, [0.3])
    finally:
        del model.forward
    assert attack.black_box and queried and not any(queried)  # labels only, no gradients
    acc = attack(model, data.x_test, data.y_test, [0.3]).accuracy(data.y_test)
    clean = (model(data.x_test).argmax(1) == data.y_test).float().mean()
    assert acc[0] < clean - 0.2  # transfers from the surrogate


def test_bad_parameters():
    for bad in ({"surrogate": "oracle"}, {"steps": 0}, {"lr": 0}, {"beta": -1}):
        with pytest.raises(ValueError):
            ATTACKS.create("advgan", **bad)
    with pytest.raises(TypeError):  # untargeted only
        ATTACKS.create("advgan", targeted=True)


def test_gan_adversarial_training_hardens_against_its_generator(setup, digits):
    """The defense trains a generator against the current classifier at every batch; the
    result resists a fresh AdvGAN better than standard training does."""
    _, data = setup
    x, y = data.x_train, data.y_train
    config = TrainConfig(epochs=4, batch_size=64, lr=0.005)
    models = {}
    for name in ("none", "gan_adversarial_training"):
        torch.manual_seed(0)
        model = TinyCNN(mean=float(x.mean()), std=float(x.std()))
        defense = None if name == "none" else DEFENSES.create(name, eps=0.2, width=8)
        train_classifier(model, x, y, config=config, seed=0, objective=defense, progress=False)
        models[name] = model.eval()
    robust = {}
    for name, model in models.items():
        attack = ATTACKS.create("advgan", **FAST).fit(model, x, y, [0.2])
        robust[name] = float(
            attack(model, data.x_test, data.y_test, [0.2]).accuracy(data.y_test)[0]
        )
    assert robust["gan_adversarial_training"] > robust["none"] + 0.1, robust


def test_trainer_margin_loss_is_the_cw_margin():
    logits = torch.tensor([[3.0, 1.0, 2.0]])
    assert margin_loss(logits, torch.tensor([0]), targeted=False).item() == 1.0
