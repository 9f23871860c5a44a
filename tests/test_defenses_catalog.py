"""The adversarial-training family on the 8x8 digits: each defense buys robustness
against the attack it trains with, its objective is the paper's formula, crafting
never disturbs the model, and bad parameters are refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.defenses import AdversarialTraining, TrainingDefense
from robustbench_gan.errors import UserError
from robustbench_gan.gans.train import train_gan
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS, DEFENSES, GENERATORS
from robustbench_gan.utils import torch_generator

EPS = 0.1  # training and evaluation budget on digits
CONFIG = TrainConfig(epochs=8, lr=3e-3)
EVAL_PGD = {"steps": 10}


def classifier(data, name: str = "small_cnn") -> nn.Module:
    torch.manual_seed(0)
    extra = {"width": 16} if name == "small_cnn" else {}
    return CLASSIFIERS.create(
        name, in_shape=data.shape, num_classes=10, mean=data.mean, std=data.std, **extra
    )


def trained(data, defense: TrainingDefense | None = None, name: str = "small_cnn") -> nn.Module:
    model = classifier(data, name)
    train_classifier(
        model, data.x_train, data.y_train, config=CONFIG, seed=0, objective=defense, progress=False
    )
    return model


def accuracy(model: nn.Module, data, attack: str, eps: float) -> float:
    params = EVAL_PGD if attack == "pgd" else {}
    result = ATTACKS.create(attack, **params)(model, data.x_test, data.y_test, [eps])
    return float(result.accuracy(data.y_test)[0])


class Recorder(nn.Module):
    """Wraps a classifier and records the mode of every forward pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return self.inner(x)


def tiny_mlp(data, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return CLASSIFIERS.create("mlp", in_shape=data.shape, num_classes=10)


@pytest.fixture(scope="module")
def plain(digits):
    return trained(digits)


@pytest.fixture(scope="module")
def static_mlp(digits):
    return trained(digits, name="mlp")


@pytest.fixture(scope="module")
def tiny_cdcgan(digits):
    torch.manual_seed(0)
    gan = GENERATORS.create("cdcgan", in_shape=digits.shape, num_classes=10, ngf=8, ndf=8)
    train_gan(gan, digits.x_train, digits.y_train, steps=5, seed=0, progress=False)
    return gan


def make(name: str, request, **overrides) -> TrainingDefense:
    """A defense of the catalog at the test budget, with its runtime inputs."""
    params: dict = {"eps": EPS}
    if name == "ensemble_at":
        params["static_models"] = [request.getfixturevalue("static_mlp")]
    if name == "gan_augment":
        params.update(
            generator=request.getfixturevalue("tiny_cdcgan"),
            share=0.3,
            attack="pgd",
            attack_params={"steps": 5},
        )
    params.update({"pgd_at": {"steps": 5}, "trades": {"steps": 5}}.get(name, {}))
    params.update(overrides)
    return DEFENSES.create(name, **params)


# defense -> the attack it trains against (PGD evaluates the random-start and KL variants)
CATALOG = {
    "fgsm_at": "fgsm",
    "pgd_at": "pgd",
    "fgsm_rs": "pgd",
    "trades": "pgd",
    "ensemble_at": "fgsm",
    "gan_augment": "pgd",
}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_defense_is_more_robust_than_standard_training(digits, plain, request, name):
    defended = trained(digits, make(name, request))
    attack = CATALOG[name]
    plain_acc, defended_acc = (
        accuracy(plain, digits, attack, EPS),
        accuracy(defended, digits, attack, EPS),
    )
    assert defended_acc > plain_acc + 0.2, (plain_acc, defended_acc)
    clean = accuracy(defended, digits, "fgsm", 0.0)
    assert clean > 0.85 and clean > accuracy(plain, digits, "fgsm", 0.0) - 0.05, clean


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_crafting_is_in_eval_mode_and_leaves_the_model_alone(digits, request, name):
    model = Recorder(tiny_mlp(digits)).train()
    defense = make(name, request)
    x, y = defense.batch(digits.x_train[:16], digits.y_train[:16], torch_generator(0))
    loss = defense.loss(model, x, y)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    # crafting passes (eval), then the objective's passes (train); ensemble_at's
    # first batch is crafted on the trained model itself
    crafting = model.modes.index(True)
    assert crafting >= 1 and not any(model.modes[:crafting]) and all(model.modes[crafting:])
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def fresh_attack(name: str, **params):
    return ATTACKS.create(name, seed=0, **params)


def test_pgd_at_trains_on_pgd_examples_only(digits):
    model = tiny_mlp(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]
    loss = DEFENSES.create("pgd_at", eps=EPS, steps=3).loss(model, x, y)
    x_adv = fresh_attack("pgd", steps=3, random_start=True, keep_first_success=False).generate(
        model.eval(), x, y, EPS
    )
    model.train()
    torch.testing.assert_close(loss, F.cross_entropy(model(x_adv), y))
    assert (x_adv - x).abs().max() <= EPS + 1e-6 and not torch.equal(x_adv, x)
    assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)


def test_fgsm_rs_is_one_step_of_one_and_a_quarter_eps_from_a_random_start(digits):
    model = tiny_mlp(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]
    defense = DEFENSES.create("fgsm_rs", eps=EPS)
    assert (defense.attack.steps, defense.attack.rel_stepsize) == (1, 1.25)
    assert defense.attack.random_start and defense.alpha == 0
    x_adv = defense.adversarial_examples(model, x, y)
    again = DEFENSES.create("fgsm_rs", eps=EPS).loss(model, x, y)
    torch.testing.assert_close(again, F.cross_entropy(model(x_adv), y))
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    # a random start: the examples are not FGSM's corners of the ball
    fgsm = fresh_attack("fgsm").generate(model, x, y, EPS)
    assert not torch.equal(x_adv, fgsm)


def trades_reference(model, x, eps, steps, step, seed):
    """TRADES's crafting loop written out (Zhang et al. 2019, Algorithm 1)."""
    noise = torch.randn(x.shape, generator=torch_generator(seed))
    clean = F.softmax(model(x), dim=1).detach()
    adv = torch.min(torch.max(x + 0.001 * noise, x - eps), x + eps).clamp(0, 1)
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(adv), dim=1), clean, reduction="sum")
        (grad,) = torch.autograd.grad(kl, adv)
        adv = adv.detach() + step * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv


def test_trades_objective_is_ce_plus_beta_kl(digits):
    model = tiny_mlp(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]
    loss = DEFENSES.create("trades", eps=EPS, beta=3.0, steps=4, rel_stepsize=0.25).loss(
        model, x, y
    )
    x_adv = trades_reference(model, x, EPS, 4, 0.25 * EPS, seed=0)
    p_clean = F.softmax(model(x), dim=1)
    p_adv = F.softmax(model(x_adv), dim=1)
    kl = (p_clean * (p_clean.log() - p_adv.log())).sum() / len(x)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y) + 3.0 * kl)
    start = (x + 0.001 * torch.randn(x.shape, generator=torch_generator(0))).clamp(0, 1)
    p_start = F.softmax(model(start), dim=1)
    assert kl > (p_clean * (p_clean.log() - p_start.log())).sum() / len(x)  # the ascent worked


def test_ensemble_at_rotates_sources_and_never_updates_static_models(digits):
    statics = [Recorder(tiny_mlp(digits, seed)) for seed in (1, 2)]
    before = [{k: v.clone() for k, v in s.state_dict().items()} for s in statics]
    defense = DEFENSES.create("ensemble_at", static_models=statics, eps=EPS)
    assert DEFENSES.get("ensemble_at").needs_static_models
    model = Recorder(tiny_mlp(digits))
    x, y = digits.x_train[:96], digits.y_train[:96]
    train_classifier(
        model,
        x,
        y,
        config=TrainConfig(epochs=2, batch_size=16),
        seed=0,
        objective=defense,
        progress=False,
    )
    # 12 batches over 3 sources: 4 each, one crafting pass per FGSM batch on a static model
    assert [len(s.modes) for s in statics] == [4, 4]
    assert not any(mode for s in statics for mode in s.modes)  # crafted in eval mode
    assert model.modes.count(False) == 4  # crafting passes on the trained model
    for static, weights in zip(statics, before):
        assert all(torch.equal(v, static.state_dict()[k]) for k, v in weights.items())
        assert all(p.grad is None for p in static.parameters())
        assert not static.training


def test_ensemble_at_objective_mixes_clean_and_static_examples(digits):
    static = tiny_mlp(digits, 1)
    model = tiny_mlp(digits)
    x, y = digits.x_train[:32], digits.y_train[:32]
    defense = DEFENSES.create("ensemble_at", static_models=[static], eps=EPS, alpha=0.3)
    defense.loss(model, x, y)  # first batch: the trained model is the source
    loss = defense.loss(model, x, y)  # second: the static one
    x_adv = fresh_attack("fgsm").generate(static, x, y, EPS)
    expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(x_adv), y)
    torch.testing.assert_close(loss, expected)


def test_gan_augment_with_an_attack_trains_adversarially_on_the_mixed_batch(digits, tiny_cdcgan):
    model = tiny_mlp(digits)
    params = {"attack": "pgd", "attack_params": {"steps": 2}, "eps": EPS, "alpha": 0.2}
    defense = DEFENSES.create("gan_augment", generator=tiny_cdcgan, share=0.5, **params)
    x, y = defense.batch(digits.x_train[:16], digits.y_train[:16], torch_generator(0))
    assert len(x) == 32
    expected = AdversarialTraining(**params).loss(model, x, y)
    torch.testing.assert_close(defense.loss(model, x, y), expected)
    plain = DEFENSES.create("gan_augment", generator=tiny_cdcgan)
    torch.testing.assert_close(plain.loss(model, x, y), F.cross_entropy(model(x), y))


def test_adversarial_training_with_alpha_one_is_standard_training(digits):
    model = Recorder(tiny_mlp(digits))
    x, y = digits.x_train[:32], digits.y_train[:32]
    loss = AdversarialTraining(attack="pgd", eps=EPS, alpha=1.0).loss(model, x, y)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    assert False not in model.modes  # nothing was crafted


BAD = [
    ("pgd_at", {"eps": 0}),
    ("pgd_at", {"eps": 1.5}),
    ("pgd_at", {"alpha": -0.1}),
    ("pgd_at", {"steps": 0}),
    ("pgd_at", {"rel_stepsize": 0}),
    ("fgsm_rs", {"eps": 2}),
    ("fgsm_rs", {"step": 0}),
    ("trades", {"eps": 0}),
    ("trades", {"beta": 0}),
    ("trades", {"steps": 0}),
    ("trades", {"rel_stepsize": -1}),
    ("ensemble_at", {"static_models": []}),
    ("ensemble_at", {"alpha": 1.5}),
    ("gan_augment", {"eps": 0}),
    ("gan_augment", {"alpha": 2}),
    ("gan_augment", {"share": 1.0}),
    ("gan_augment", {"attack_params": {"targeted": True}}),
]


@pytest.mark.parametrize("name, kwargs", BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_parameters_are_refused(request, name, kwargs):
    with pytest.raises(ValueError):
        make(name, request, **kwargs)


def test_unknown_attack_is_a_user_error():
    with pytest.raises(UserError, match="unknown attack"):
        AdversarialTraining(attack="no_such_attack", eps=EPS, alpha=0.0)


def test_every_training_defense_has_defaults_except_runtime_inputs():
    import inspect

    runtime = {"generator", "static_models"}
    for name in CATALOG:
        signature = inspect.signature(DEFENSES.get(name))
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.name not in runtime
        ]
        assert not missing, (name, missing)
