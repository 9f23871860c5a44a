"""Defenses on tiny data: FGSM training helps against FGSM; GAN augmentation mixes batches."""

from __future__ import annotations

import pytest
import torch

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.defenses import ModelDefense, TrainingDefense
from robustbench_gan.gans.train import train_gan
from robustbench_gan.models.objective import TrainingObjective
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS, DEFENSES, GENERATORS
from robustbench_gan.utils import torch_generator


def small_cnn(data):
    torch.manual_seed(0)
    return CLASSIFIERS.create(
        "small_cnn", in_shape=data.shape, num_classes=10, mean=data.mean, std=data.std, width=16
    )


def fgsm_accuracy(model, data, eps):
    result = ATTACKS.create("fgsm")(model, data.x_test, data.y_test, [eps])
    return float(result.accuracy(data.y_test)[0])


def test_fgsm_at_is_more_robust_than_standard_training(digits):
    config = TrainConfig(epochs=8, lr=3e-3)
    plain = small_cnn(digits)
    train_classifier(plain, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    defended = small_cnn(digits)
    defense = DEFENSES.create("fgsm_at", eps=0.1)
    train_classifier(
        defended,
        digits.x_train,
        digits.y_train,
        config=config,
        seed=0,
        objective=defense,
        progress=False,
    )
    plain_acc, defended_acc = (
        fgsm_accuracy(plain, digits, 0.1),
        fgsm_accuracy(defended, digits, 0.1),
    )
    assert defended_acc > plain_acc + 0.2, (plain_acc, defended_acc)
    assert fgsm_accuracy(defended, digits, 0.0) > 0.9  # clean accuracy survives


def test_fgsm_at_objective_mixes_clean_and_adversarial(digits):
    model = small_cnn(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]
    x_var = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x_var), y), x_var)
    x_adv = (x + 0.1 * grad.sign()).clamp(0, 1)  # the paper's formula, computed here
    crafted = DEFENSES.create("fgsm_at", eps=0.1).adversarial_examples(model, x, y)
    torch.testing.assert_close(crafted, x_adv)
    assert (crafted - x).abs().max() <= 0.1 + 1e-6 and crafted.min() >= 0 and crafted.max() <= 1
    assert all(p.grad is None for p in model.parameters())
    ce = torch.nn.functional.cross_entropy
    for alpha in (0.0, 0.5, 1.0):
        loss = DEFENSES.create("fgsm_at", eps=0.1, alpha=alpha).loss(model, x, y)
        assert all(p.grad is None for p in model.parameters())
        expected = alpha * ce(model(x), y) + (1 - alpha) * ce(model(x_adv), y)
        torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("kwargs", [{"eps": 0}, {"eps": 1.5}, {"alpha": -0.1}, {"alpha": 2}])
def test_fgsm_at_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        DEFENSES.create("fgsm_at", **kwargs)


@pytest.fixture(scope="module")
def tiny_cdcgan(digits):
    torch.manual_seed(0)
    gan = GENERATORS.create("cdcgan", in_shape=digits.shape, num_classes=10, ngf=8, ndf=8)
    train_gan(gan, digits.x_train, digits.y_train, steps=5, seed=0, progress=False)
    return gan


@pytest.mark.parametrize("share, n_fake", [(0.5, 32), (0.2, 8), (0.0, 0)])
def test_gan_augment_adds_the_share_of_generated_samples(digits, tiny_cdcgan, share, n_fake):
    defense = DEFENSES.create("gan_augment", generator=tiny_cdcgan, share=share)
    x, y = digits.x_train[:32], digits.y_train[:32]
    xb, yb = defense.batch(x, y, torch_generator(0))
    assert len(xb) == len(yb) == 32 + n_fake
    assert torch.equal(xb[:32], x) and torch.equal(yb[:32], y)
    assert xb.min() >= 0 and xb.max() <= 1
    assert ((yb[32:] >= 0) & (yb[32:] < 10)).all()


def test_gan_augment_needs_a_conditional_generator(digits):
    dcgan = GENERATORS.create("dcgan", in_shape=digits.shape, num_classes=10, ngf=8, ndf=8)
    with pytest.raises(ValueError, match="conditional"):
        DEFENSES.create("gan_augment", generator=dcgan)


def test_defense_kinds():
    assert issubclass(DEFENSES.get("fgsm_at"), TrainingDefense)
    assert issubclass(DEFENSES.get("gan_augment"), TrainingDefense)
    assert issubclass(DEFENSES.get("ensemble"), ModelDefense)
    members = [CLASSIFIERS.create("mlp", in_shape=(1, 4, 4), num_classes=3) for _ in range(2)]
    ensemble = DEFENSES.create("ensemble").build(members)
    x = torch.rand(3, 1, 4, 4)
    torch.testing.assert_close(ensemble(x), (members[0](x) + members[1](x)) / 2)


def test_eps_warmup_ramps_the_budget_then_holds_it():
    defense = DEFENSES.create("pgd_at", eps=0.3, steps=2, eps_warmup=0.5)
    seen = []
    for epoch in range(6):
        defense.start_epoch(epoch, 6)
        seen.append(round(defense.eps, 6))
    assert seen == [0.1, 0.2, 0.3, 0.3, 0.3, 0.3]
    plain = DEFENSES.create("pgd_at", eps=0.3, steps=2)
    plain.start_epoch(0, 6)
    assert plain.eps == 0.3


def test_model_defense_capabilities():
    ensemble, defense_gan = DEFENSES.get("ensemble"), DEFENSES.get("defense_gan")
    assert (ensemble.combines_members, ensemble.purifier) == (True, False)
    assert (defense_gan.combines_members, defense_gan.purifier) == (False, True)
    assert (ModelDefense.combines_members, ModelDefense.purifier) == (False, False)
    assert ensemble.variant({"mode": "probs"}) == ModelDefense.variant({}) == ""
    assert defense_gan.variant({}) == "bpda"  # the report's default label
    assert defense_gan.variant({"gradient": "naive", "steps": 5}) == "naive"


def test_training_defenses_are_training_objectives():
    assert issubclass(TrainingDefense, TrainingObjective)
    for name in DEFENSES.list():
        factory = DEFENSES.get(name)
        assert issubclass(factory, TrainingObjective) == (factory.kind == "training"), name
