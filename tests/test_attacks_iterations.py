"""``Attack.iterations``: the length of the iteration curve, for every attack that reports
per-sample success steps, and exactly what the runner read from PGD's fields before."""

from __future__ import annotations

import pytest
import torch

from robustbench_gan.attacks import Attack
from robustbench_gan.attacks.bim import paper_steps
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

#: small settings, so every attack runs in a blink on an untrained MLP
FAST: dict[str, dict] = {
    "pgd": {"steps": 4, "restarts": 2},
    "mifgsm": {"steps": 4},
    "apgd_ce": {"steps": 4, "restarts": 2},
    "apgd_dlr": {"steps": 4},
    "square": {"n_queries": 20},
    "deepfool": {"steps": 5},
    "cw_l2": {"steps": 5, "binary_search_steps": 2},
    "cascade": {"attacks": [{"name": "apgd_ce", "steps": 3}]},
    "fab": {"steps": 3},
    "autoattack": {"steps": 3, "n_queries": 20, "n_target_classes": 2},
    "art:FastGradientMethod": {},
    "foolbox:LinfPGD": {"steps": 3},
}
NAMES = sorted(
    (set(ATTACKS.list()) - {"advgan", "sgm"}) | {"art:FastGradientMethod", "foolbox:LinfPGD"}
)


def legacy_total(attack: Attack) -> int:
    """What the runner computed before ``iterations`` existed."""
    return getattr(attack, "steps", 0) * getattr(attack, "restarts", 1)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = CLASSIFIERS.create("mlp", in_shape=(1, 8, 8), num_classes=10).eval()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, x, torch.arange(12) % 10


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_iterations_is_the_curve_length_the_runner_used(setup, name, targeted):
    factory = ATTACKS.get(name)
    try:
        attack: Attack = factory(targeted=targeted, **FAST.get(name, {}))
    except ValueError:
        assert targeted, name  # untargeted-only attacks refuse targeted=True
        return
    model, x, y = setup
    eps = [0.0, 0.5, 1.0] if attack.norm == "l2" else [0.0, 0.05, 0.1]
    target_class = (y + 1) % 10 if targeted else None
    result = attack(model, x, y, eps, target_class=target_class)
    if result.success_step is None:
        assert attack.iterations is None, name
    else:
        assert (attack.iterations or 0) == legacy_total(attack), name
        assert int(result.success_step.max()) <= max(attack.iterations or 0, 20)


def test_pgd_family_counts_steps_over_restarts():
    assert ATTACKS.create("pgd", steps=7, restarts=3).iterations == 21
    assert ATTACKS.create("apgd_dlr", steps=5, restarts=2).iterations == 10
    assert ATTACKS.create("mifgsm", steps=6).iterations == 6
    assert ATTACKS.create("square").iterations is None  # it counts queries
    assert ATTACKS.create("fgsm").iterations is None


def test_bim_iterations_follow_the_budget_attacked_last(setup):
    model, x, y = setup
    attack = ATTACKS.create("bim")
    attack(model, x, y, [0.1, 0.02])
    assert attack.iterations == paper_steps(0.02) == legacy_total(attack)
