"""The art: and foolbox: adapters: parity with our attacks, the base's guarantees, clear errors.

A small CNN is trained on digits once per module; most checks attack a slice of
the test split to stay fast.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.attacks import Attack, AttackResult
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.errors import UserError
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

N_SMALL = 60

# name -> (constructor kwargs, budgets); small budgets of work
ADAPTERS: dict[str, tuple[dict, list[float]]] = {
    "art:FastGradientMethod": ({}, [0.1, 0.3]),
    "art:ProjectedGradientDescent": ({"max_iter": 5, "num_random_init": 1}, [0.1, 0.3]),
    "art:ProjectedGradientDescent-l2": ({"max_iter": 5, "norm": "l2"}, [0.5, 1.5]),
    "art:CarliniL2Method": ({"max_iter": 5, "binary_search_steps": 2}, [0.5, 1.5]),
    "art:SquareAttack": ({"max_iter": 20}, [0.1, 0.3]),
    "foolbox:LinfPGD": ({"steps": 5}, [0.1, 0.3]),
    "foolbox:L2PGD": ({"steps": 5}, [0.5, 1.5]),
    "foolbox:L2CarliniWagnerAttack": ({"steps": 20, "binary_search_steps": 2}, [0.5, 1.5]),
}


@dataclass
class Setup:
    model: nn.Module
    x: Tensor
    y: Tensor

    def head(self, n: int = N_SMALL) -> tuple[nn.Module, Tensor, Tensor]:
        return self.model, self.x[:n], self.y[:n]


@pytest.fixture(scope="module")
def setup(digits) -> Setup:
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std,
        width=8,
    )  # fmt: skip
    config = TrainConfig(epochs=8, lr=1e-2)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    model.eval()
    with torch.no_grad():
        acc = (model(digits.x_test).argmax(1) == digits.y_test).float().mean().item()
    assert acc >= 0.85, f"test model too weak: {acc:.3f}"
    return Setup(model, digits.x_test, digits.y_test)


def make(key: str, **overrides: object) -> Attack:
    kwargs, _ = ADAPTERS[key]
    return ATTACKS.create(key.split("-")[0], **{**kwargs, **overrides})


def in_ball(attack: Attack, result: AttackResult, x: Tensor) -> None:
    for eps, adv in zip(result.eps, result.adv):
        delta = (adv - x).flatten(1)
        size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
        assert size.max().item() <= eps + 1e-5
        assert adv.min() >= 0 and adv.max() <= 1


# -- import cost --------------------------------------------------------------------------
def test_importing_attacks_does_not_import_the_libraries() -> None:
    code = (
        "import sys, robustbench_gan.attacks\n"
        "from robustbench_gan.registry import ATTACKS\n"
        "assert 'art' in ATTACKS.namespaces() and 'foolbox' in ATTACKS.namespaces()\n"
        "print(sorted(m for m in ('art', 'foolbox') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the base's guarantees, for every adapter -----------------------------------------------
@pytest.mark.parametrize("key", ADAPTERS)
def test_eps_zero_changes_nothing(setup: Setup, key: str) -> None:
    model, x, y = setup.head(20)
    result = make(key)(model, x, y, 0.0)
    assert torch.equal(result.adv[0], x)


@pytest.mark.parametrize("key", ADAPTERS)
def test_inside_ball_and_box_and_accuracy_falls(setup: Setup, key: str) -> None:
    model, x, y = setup.head()
    attack = make(key)
    budgets = [0.0, *ADAPTERS[key][1]]
    result = attack(model, x, y, budgets)
    in_ball(attack, result, x)
    acc = result.accuracy(y)
    assert torch.all(acc[1:] <= acc[:-1]) and acc[-1] < acc[0], acc


def test_norms_and_flags_come_from_the_library_class() -> None:
    expected = {  # name: (norm, minimal, black_box, targeted_supported)
        "art:FastGradientMethod": ("linf", False, False, True),
        "art:ProjectedGradientDescent-l2": ("l2", False, False, True),
        "art:CarliniL2Method": ("l2", True, False, True),
        "art:SquareAttack": ("linf", False, True, False),
        "foolbox:LinfPGD": ("linf", False, False, True),
        "foolbox:L2PGD": ("l2", False, False, True),
        "foolbox:L2CarliniWagnerAttack": ("l2", True, False, True),
    }
    for key, flags in expected.items():
        a = make(key)
        assert (a.norm, a.minimal, a.black_box, a.targeted_supported) == flags, key
    boundary = ATTACKS.create("foolbox:BoundaryAttack", steps=10)
    assert boundary.black_box and boundary.minimal and boundary.norm == "l2"
    assert ATTACKS.create("art:DeepFool").minimal
    assert ATTACKS.create("art:CarliniLInfMethod").norm == "linf"


# -- parity and budget translation ---------------------------------------------------------
@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_art_fgsm_matches_our_fgsm(setup: Setup, eps: float) -> None:
    ours = ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, eps).accuracy(setup.y)
    art = ATTACKS.create("art:FastGradientMethod")(setup.model, setup.x, setup.y, eps)
    assert abs(ours.item() - art.accuracy(setup.y).item()) <= 0.005


def test_art_step_is_relative_to_eps(setup: Setup) -> None:
    model, x, _ = setup.head(4)
    given = ATTACKS.create("art:ProjectedGradientDescent", rel_stepsize=0.25)
    default = ATTACKS.create("art:ProjectedGradientDescent")
    for attack, rel in ((given, 0.25), (default, 0.1 / 0.3)):  # ART's 0.1 at its eps 0.3
        estimator = attack.estimator(model, tuple(x.shape[1:]), 10, x.device)
        built = attack.build(estimator, 0.2)
        assert built.eps == 0.2 and built.eps_step == pytest.approx(rel * 0.2)
        assert built.norm == np.inf and built.targeted is False


def test_iterative_adapters_beat_one_step(setup: Setup) -> None:
    model, x, y = setup.head(120)
    fgsm = ATTACKS.create("fgsm")(model, x, y, 0.1).accuracy(y).item()
    for name, kwargs in (
        ("art:ProjectedGradientDescent", {"max_iter": 10, "rel_stepsize": 0.25}),
        ("foolbox:LinfPGD", {"steps": 10, "rel_stepsize": 0.25}),
    ):
        pgd = ATTACKS.create(name, **kwargs)(model, x, y, 0.1).accuracy(y).item()
        assert pgd <= fgsm + 0.01, (name, pgd, fgsm)


@pytest.mark.parametrize("key", ["art:CarliniL2Method", "foolbox:L2CarliniWagnerAttack"])
def test_minimal_attacks_run_once_for_all_budgets(
    setup: Setup, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, x, y = setup.head()
    attack = make(key)
    calls = []
    perturb = attack.perturb
    monkeypatch.setattr(attack, "perturb", lambda *args: calls.append(args[3]) or perturb(*args))
    result = attack(model, x, y, [0.25, 0.5, 1.0, 2.0])
    assert calls == [float("inf")]  # one batch, unbounded
    norms = (result.adv - x).flatten(2).norm(dim=2)
    assert torch.all(norms[1:] >= norms[:-1] - 1e-6)  # cut from one run: nested
    in_ball(attack, result, x)


def test_targeted_adapters_hit_the_target(setup: Setup) -> None:
    model, x, y = setup.head()
    target_class = (y + 1) % 10
    for name, kwargs in (
        ("art:ProjectedGradientDescent", {"max_iter": 20, "rel_stepsize": 0.1}),
        ("foolbox:LinfPGD", {"steps": 20, "rel_stepsize": 0.1}),
    ):
        result = ATTACKS.create(name, targeted=True, **kwargs)(
            model, x, y, 0.3, target_class=target_class
        )
        assert torch.equal(result.success[0], result.pred[0] == target_class)
        assert result.success.float().mean() >= 0.8, name


# -- seeds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["art:ProjectedGradientDescent", "foolbox:LinfPGD"])
def test_seed_fixes_the_random_start(setup: Setup, key: str) -> None:
    model, x, y = setup.head(30)
    np_before, torch_before = np.random.get_state()[1].copy(), torch.get_rng_state()
    first = make(key, seed=3)(model, x, y, [0.05, 0.1])
    second = make(key, seed=3)(model, x, y, [0.1])
    other = make(key, seed=4)(model, x, y, [0.1])
    assert torch.equal(first.adv[1], second.adv[0])  # same seed, and independent of budgets
    assert not torch.equal(first.adv[1], other.adv[0])  # the seed is used
    assert np.array_equal(np.random.get_state()[1], np_before)  # global streams restored
    assert torch.equal(torch.get_rng_state(), torch_before)


# -- errors: one clear line -------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("art:NoSuchAttack", {}, UserError, "unknown attack art:NoSuchAttack"),
        ("art:FastGradientMethd", {}, UserError, "did you mean art:FastGradientMethod"),
        ("foolbox:LinfPDG", {}, UserError, "did you mean foolbox:LinfPGD"),
        ("art:PoisoningAttackSVM", {}, UserError, "poisoning attack"),
        ("foolbox:SpatialAttack", {}, UserError, "no perturbation budget"),
        ("foolbox:LinfPGD", {"stepz": 3}, ValueError, "no parameter 'stepz'.*steps"),
        ("art:FastGradientMethod", {"epz": 1}, ValueError, "no parameter 'epz'.*num_random_init"),
        ("art:FastGradientMethod", {"eps": 0.1}, ValueError, r"suite's budget"),
        ("art:ProjectedGradientDescent", {"eps_step": 0.1}, ValueError, "rel_stepsize"),
        ("art:DeepFool", {"rel_stepsize": 0.1}, ValueError, "no parameter 'rel_stepsize'"),
        ("art:DeepFool", {"targeted": True}, ValueError, "does not support targeted"),
        ("foolbox:LinfDeepFoolAttack", {"targeted": True}, ValueError, "not support targeted"),
        ("foolbox:GenAttack", {}, ValueError, "only runs targeted"),
        ("art:DecisionTreeAttack", {}, ValueError, "cannot attack a PyTorch classifier"),
        ("art:ProjectedGradientDescent", {"max_iter": -1}, ValueError, "max_iter"),
        ("art:FastGradientMethod", {"norm": "l1"}, ValueError, "norm must be one of"),
        ("foolbox:LinfPGD", {"norm": "l2"}, ValueError, "contradicts"),
        ("foolbox:L1PGD", {}, ValueError, "only linf and l2"),
    ],
)
def test_errors_are_one_clear_line(name: str, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        ATTACKS.create(name, **kwargs)
    assert "\n" not in str(info.value)


# -- a suite with adapter entries, validated and run ---------------------------------------------
SUITE = """
name = "adapters"
seed = 0

[dataset]
name = "digits"
max_train = 200
max_test = 30

[train]
epochs = 1

[eval]
eps = [0, 0.1]

[[targets]]
name = "mlp"
hidden = 16

[[attacks]]
name = "art:FastGradientMethod"

[[attacks]]
name = "foolbox:LinfPGD"
steps = 3
"""


def test_suite_with_adapters_validates_and_runs(tmp_path) -> None:
    from robustbench_gan.runner.run import run_suite
    from robustbench_gan.suite import load_suite

    path = tmp_path / "adapters.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    assert [a.name for a in suite.attacks] == ["art:FastGradientMethod", "foolbox:LinfPGD"]
    bad = tmp_path / "bad.toml"
    bad.write_text(SUITE.replace("steps = 3", "stepz = 3"))
    with pytest.raises(UserError, match=r"attacks\[1\].*no parameter 'stepz'"):
        load_suite(bad)

    out = tmp_path / "out"
    run_suite(path, out=out, cache_dir=tmp_path / "cache", device="cpu", progress=False)
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"art:FastGradientMethod", "foolbox:LinfPGD"} <= set(board["attack"])
    adapted = board[board["attack"].isin(["art:FastGradientMethod", "foolbox:LinfPGD"])]
    assert len(adapted) == 4 and set(adapted["norm"]) == {"linf"}
    assert adapted["robust_acc"].between(0, 1).all()
