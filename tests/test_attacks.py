"""Attacks: properties every attack must have, and parity with ART and foolbox.

A tiny CNN is trained on scikit-learn's digits (8x8, bundled, offline) once per
module; every registered attack is checked against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

from robustbench_gan.attacks import Attack, AttackResult
from robustbench_gan.registry import ATTACKS

EPS_GRID = [0.0, 0.05, 0.1, 0.2, 0.3]
#: attacks that learn on a training set first (AdvGAN) have their own tests (test_advgan.py)
#: attacks that run on any model (AdvGAN learns on training data; SGM needs residual blocks,
#: its properties are tested on a ResNet in test_transfer_attacks.py)
GENERIC = [
    n for n in ATTACKS.list()
    if not any(getattr(ATTACKS.get(n), need, False) for need in ("needs_training_data", "needs_residual_blocks"))
]  # fmt: skip
PGD_STEPS = 10
PARITY_SEEDS = (0, 1, 2)


@dataclass
class Setup:
    model: TinyCNN
    x: Tensor
    y: Tensor


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A tiny CNN runs fastest on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(one_thread: None) -> Setup:
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    x_tr, y_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr).long()
    torch.manual_seed(0)
    model = TinyCNN(mean=float(x_tr.mean()), std=float(x_tr.std()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        for idx in torch.randperm(len(x_tr)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    x, y = torch.from_numpy(x_te), torch.from_numpy(y_te).long()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.9, f"test model too weak: {acc:.3f}"
    return Setup(model, x, y)


#: cheaper settings for the properties every attack must have (strength is tested elsewhere)
FAST: dict[str, dict[str, object]] = {
    "pgd": {"steps": PGD_STEPS},
    "apgd_ce": {"steps": PGD_STEPS},
    "apgd_dlr": {"steps": PGD_STEPS},
    "cw_l2": {"steps": 20, "binary_search_steps": 3},
    "square": {"n_queries": 100},
    "fab": {"steps": 10},
    "autoattack": {"steps": 5, "n_queries": 50, "n_target_classes": 2},
    "cascade": {"attacks": [{"name": "apgd_ce", "steps": 5}, {"name": "square", "n_queries": 50}]},
}


def make(name: str, **kwargs: object) -> Attack:
    """A registered attack, with cheaper settings for the slow ones to keep tests fast."""
    return ATTACKS.create(name, **{**FAST.get(name, {}), **kwargs})


def in_ball(attack: Attack, result: AttackResult, x: Tensor) -> None:
    for eps, adv in zip(result.eps, result.adv):
        delta = (adv - x).flatten(1)
        size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
        assert size.max().item() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1


# -- properties of every registered attack ---------------------------------------
@pytest.mark.parametrize("name", GENERIC)
def test_eps_zero_changes_nothing(setup: Setup, name: str) -> None:
    result = make(name)(setup.model, setup.x, setup.y, 0.0)
    assert torch.equal(result.adv[0], setup.x)
    assert torch.equal(result.pred[0], result.clean_pred)


@pytest.mark.parametrize("name", GENERIC)
def test_adv_inside_ball_and_box(setup: Setup, name: str) -> None:
    attack = make(name)
    result = attack(setup.model, setup.x, setup.y, [0.1, 0.3])
    assert result.adv.shape == (2, *setup.x.shape)
    assert result.success.shape == result.pred.shape == (2, len(setup.x))
    in_ball(attack, result, setup.x)


@pytest.mark.parametrize("name", GENERIC)
def test_robust_accuracy_does_not_rise_with_eps(setup: Setup, name: str) -> None:
    acc = make(name)(setup.model, setup.x, setup.y, EPS_GRID).accuracy(setup.y)
    assert acc[0] >= 0.9
    assert torch.all(acc[1:] <= acc[:-1]), acc


@pytest.mark.parametrize("name", GENERIC)
def test_model_left_as_found(setup: Setup, name: str) -> None:
    model = setup.model
    frozen_param = next(model.parameters())
    model.train()
    frozen_param.requires_grad_(False)
    try:
        make(name)(model, setup.x[:32], setup.y[:32], 0.1)
        assert model.training
        assert frozen_param.requires_grad is False
        assert all(p.requires_grad for p in list(model.parameters())[1:])
        assert all(p.grad is None for p in model.parameters())
    finally:
        frozen_param.requires_grad_(True)
        model.eval()


@pytest.mark.parametrize("name", GENERIC)
def test_model_restored_after_error(
    setup: Setup, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attack = make(name)

    def fail(*args: object) -> Tensor:
        raise RuntimeError("boom")

    monkeypatch.setattr(attack, "perturb", fail)
    setup.model.train()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            attack(setup.model, setup.x[:8], setup.y[:8], 0.1)
        assert setup.model.training
        assert all(p.requires_grad for p in setup.model.parameters())
    finally:
        setup.model.eval()


@pytest.mark.parametrize("name", GENERIC)
def test_same_seed_same_result(setup: Setup, name: str) -> None:
    first = make(name)(setup.model, setup.x, setup.y, 0.1)
    second = make(name)(setup.model, setup.x, setup.y, 0.1)
    assert torch.equal(first.adv, second.adv)


@pytest.mark.parametrize("name", GENERIC)
def test_budget_does_not_depend_on_other_budgets(setup: Setup, name: str) -> None:
    alone = make(name)(setup.model, setup.x, setup.y, [0.1])
    among = make(name)(setup.model, setup.x, setup.y, [0.05, 0.1, 0.3])
    assert torch.equal(alone.adv[0], among.adv[1])
    assert torch.equal(alone.success[0], among.success[1])


@pytest.mark.parametrize(
    "kwargs",
    [{"eps": -0.1}, {"eps": float("nan")}, {"eps": []}, {"x_scale": 255.0}, {"y_len": 5}],
)
def test_bad_inputs_are_value_errors(setup: Setup, kwargs: dict) -> None:
    x = setup.x[:10] * kwargs.get("x_scale", 1.0)
    y = setup.y[: kwargs.get("y_len", 10)]
    with pytest.raises(ValueError):
        make("fgsm")(setup.model, x, y, kwargs.get("eps", 0.1))


def test_targeted_needs_target(setup: Setup) -> None:
    with pytest.raises(ValueError, match="target_class"):
        ATTACKS.create("pgd", targeted=True)(setup.model, setup.x, setup.y, 0.1)


# -- PGD ------------------------------------------------------------------------------
def test_pgd_at_least_as_strong_as_fgsm(setup: Setup) -> None:
    fgsm = make("fgsm")(setup.model, setup.x, setup.y, EPS_GRID).accuracy(setup.y)
    pgd = make("pgd")(setup.model, setup.x, setup.y, EPS_GRID).accuracy(setup.y)
    assert torch.all(pgd <= fgsm + 0.01), (pgd, fgsm)


def test_l2_pgd_stays_in_l2_ball(setup: Setup) -> None:
    attack = ATTACKS.create("pgd", norm="l2", steps=PGD_STEPS)
    assert attack.norm == "l2"
    result = attack(setup.model, setup.x, setup.y, [0.5, 1.0, 2.0])
    in_ball(attack, result, setup.x)
    acc = result.accuracy(setup.y)
    assert torch.all(acc[1:] <= acc[:-1]) and acc[-1] < acc[0]


def test_targeted_pgd_hits_target(setup: Setup) -> None:
    target_class = (setup.y + 1) % 10
    attack = ATTACKS.create("pgd", targeted=True, steps=PGD_STEPS)
    result = attack(setup.model, setup.x, setup.y, 0.3, target_class=target_class)
    assert torch.equal(result.success[0], result.pred[0] == target_class)
    assert result.success.float().mean() >= 0.9


def test_restarts_never_weaken_pgd(setup: Setup) -> None:
    one = ATTACKS.create("pgd", steps=5)(setup.model, setup.x, setup.y, 0.1)
    three = ATTACKS.create("pgd", steps=5, restarts=3)(setup.model, setup.x, setup.y, 0.1)
    assert torch.all(three.success[0] >= one.success[0])


# -- parity with peer libraries ---------------------------------------------------
def art_classifier(model: nn.Module):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def accuracy_of(model: nn.Module, x_adv: np.ndarray | Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return (model(torch.as_tensor(x_adv)).argmax(1) == y).float().mean().item()


def art_fgsm_accuracy(setup: Setup, eps: float) -> float:
    from art.attacks.evasion import FastGradientMethod

    attack = FastGradientMethod(art_classifier(setup.model), norm=np.inf, eps=eps)
    return accuracy_of(setup.model, attack.generate(x=setup.x.numpy(), y=setup.y.numpy()), setup.y)


def art_pgd_accuracy(setup: Setup, eps: float, steps: int, step: float, seed: int) -> float:
    from art.attacks.evasion import ProjectedGradientDescent

    np.random.seed(seed)  # ART draws its random start from NumPy's global stream
    attack = ProjectedGradientDescent(
        art_classifier(setup.model),
        norm=np.inf,
        eps=eps,
        eps_step=step,
        max_iter=steps,
        num_random_init=1,
        batch_size=256,
        verbose=False,
    )
    return accuracy_of(setup.model, attack.generate(x=setup.x.numpy(), y=setup.y.numpy()), setup.y)


def foolbox_pgd_accuracy(setup: Setup, eps: float, steps: int, step: float, seed: int) -> float:
    import foolbox as fb

    torch.manual_seed(seed)  # foolbox draws its random start from torch's global stream
    fmodel = fb.PyTorchModel(setup.model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(steps=steps, abs_stepsize=step, random_start=True)
    _, clipped, _ = attack(fmodel, setup.x, setup.y, epsilons=eps)
    return accuracy_of(setup.model, clipped, setup.y)


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_fgsm_matches_art(setup: Setup, eps: float) -> None:
    ours = make("fgsm")(setup.model, setup.x, setup.y, eps).accuracy(setup.y).item()
    assert abs(ours - art_fgsm_accuracy(setup, eps)) <= 0.005


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_pgd_not_weaker_than_art_and_foolbox(setup: Setup, eps: float) -> None:
    """Same eps, steps, absolute step and random start; the mean over a few seeds,
    since one random start moves robust accuracy by a sample or two."""
    step = make("pgd").rel_stepsize * eps
    ours = np.mean(
        [
            make("pgd", seed=s)(setup.model, setup.x, setup.y, eps).accuracy(setup.y).item()
            for s in PARITY_SEEDS
        ]
    )
    art = np.mean([art_pgd_accuracy(setup, eps, PGD_STEPS, step, s) for s in PARITY_SEEDS])
    foolbox = np.mean([foolbox_pgd_accuracy(setup, eps, PGD_STEPS, step, s) for s in PARITY_SEEDS])
    assert ours <= art + 0.01, (ours, art)
    assert ours <= foolbox + 0.01, (ours, foolbox)
