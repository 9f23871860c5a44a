"""The attack engine's books: model passes counted at the model's boundary, attacks that
misbehave named, shared clean predictions.

A tiny CNN is trained on the bundled digits once per module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from conftest import TinyCNN
from torch import Tensor, nn

from robustbench_gan.attacks import Attack, AttackResult
from robustbench_gan.errors import UserError
from robustbench_gan.registry import ATTACKS

#: a budget at which most images stay robust to the last step (no attack stops early)
TINY = 1e-3


@dataclass
class Setup:
    model: TinyCNN
    x: Tensor
    y: Tensor


@pytest.fixture(scope="module")
def setup(digits, tiny_cnn) -> Setup:
    model = tiny_cnn
    x, y = digits.x_test[:100], digits.y_test[:100]
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() >= 0.9
    return Setup(model, x, y)


def robust(result: AttackResult, y: Tensor) -> None:
    """Some image stays robust at every nonzero budget: the attack did all its steps."""
    for eps, success in zip(result.eps, result.success):
        assert eps == 0 or not success.all()


# -- passes counted at the model's boundary --------------------------------------------
def test_fgsm_spends_one_forward_and_one_backward_pass(setup: Setup) -> None:
    result = ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, [0.0, 0.1, 0.3])
    assert result.forward_passes == (0.0, 1.0, 1.0)
    assert result.backward_passes == (0.0, 1.0, 1.0)


@pytest.mark.parametrize("norm, eps", [("linf", TINY), ("l2", 10 * TINY)])
def test_pgd_spends_one_forward_and_one_backward_pass_per_step(
    setup: Setup, norm: str, eps: float
) -> None:
    result = ATTACKS.create("pgd", norm=norm, steps=7)(setup.model, setup.x, setup.y, [eps])
    robust(result, setup.y)
    assert result.forward_passes == (7.0,)
    assert result.backward_passes == (7.0,)


def test_apgd_spends_no_backward_pass_on_its_last_iterate(setup: Setup) -> None:
    result = ATTACKS.create("apgd_ce", steps=6)(setup.model, setup.x, setup.y, [TINY])
    robust(result, setup.y)
    assert result.forward_passes == (7.0,)
    assert result.backward_passes == (6.0,)


def test_pgd_stops_counting_when_every_image_is_fooled(setup: Setup) -> None:
    result = ATTACKS.create("pgd", steps=50)(setup.model, setup.x, setup.y, [0.5])
    assert result.success.all()
    assert 0 < result.forward_passes[0] == result.backward_passes[0] < 50


def test_square_forward_passes_are_its_queries(setup: Setup) -> None:
    """One clean query per image, then the start and ``n_queries - 1`` window updates per
    image still robust (here every image the model gets right); no backward pass."""
    queries = 40
    result = ATTACKS.create("square", n_queries=queries)(setup.model, setup.x, setup.y, [TINY])
    correct = (result.clean_pred == setup.y).float().mean().item()
    assert result.success_step is not None and (result.success_step[0] < 0).float().mean() == (
        correct
    )
    assert result.forward_passes[0] == pytest.approx(1 + queries * correct)
    assert result.backward_passes == (0.0,)


def test_a_minimal_attack_counts_its_one_run_in_every_row(setup: Setup) -> None:
    result = ATTACKS.create("deepfool", steps=5)(setup.model, setup.x, setup.y, [0.0, 0.5, 1.0])
    assert len(set(result.forward_passes)) == 1 and result.forward_passes[0] > 1
    assert len(set(result.backward_passes)) == 1 and result.backward_passes[0] > 1


def test_a_composite_counts_its_parts(setup: Setup) -> None:
    """On images the model gets right, cascade([apgd_ce]) spends what APGD-CE alone does,
    plus its own two forward passes (clean logits, the check of the part's examples)."""
    with torch.no_grad():
        right = setup.model(setup.x).argmax(1) == setup.y
    x, y = setup.x[right], setup.y[right]
    part = ATTACKS.create("apgd_ce", steps=5)(setup.model, x, y, [TINY, 0.1])
    whole = ATTACKS.create("cascade", attacks=[{"name": "apgd_ce", "steps": 5}])(
        setup.model, x, y, [TINY, 0.1]
    )
    assert whole.backward_passes == part.backward_passes
    assert whole.forward_passes == tuple(f + 2 for f in part.forward_passes)
    assert torch.equal(whole.success, part.success)


@pytest.mark.parametrize("name", ["art:FastGradientMethod", "foolbox:LinfPGD"])
def test_adapters_are_counted(setup: Setup, name: str) -> None:
    kwargs = {"steps": 3} if name.startswith("foolbox") else {}
    result = ATTACKS.create(name, **kwargs)(setup.model, setup.x, setup.y, [0.1])
    assert result.forward_passes[0] >= 1
    assert result.backward_passes[0] >= 1


def test_the_hooks_are_gone_after_a_call(setup: Setup) -> None:
    class Fails(Attack):
        def perturb(self, model, x, y, eps, target_class):
            model(x)
            raise RuntimeError("boom")

    ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, 0.1)
    with pytest.raises(RuntimeError, match="boom"):
        Fails()(setup.model, setup.x, setup.y, 0.1)
    assert not setup.model._forward_hooks and not setup.model._forward_hooks_with_kwargs


# -- attacks that misbehave are named -----------------------------------------------
class Noise(Attack):
    """Returns whatever ``make(x)`` gives."""

    def __init__(self, make, **kwargs) -> None:
        super().__init__(**kwargs)
        self.make = make

    def perturb(self, model, x, y, eps, target_class):
        return self.make(x)


def test_non_finite_output_is_the_clean_image_and_no_success(setup: Setup) -> None:
    attack = Noise(lambda x: torch.full_like(x, math.nan))
    result = attack(setup.model, setup.x, setup.y, [0.0, 0.1])
    assert result.invalid_output is not None and result.projected_output is not None
    assert not result.invalid_output[0].any() and result.invalid_output[1].all()
    assert torch.equal(result.adv[1], setup.x)
    assert torch.equal(result.pred[1], result.clean_pred)
    correct = result.clean_pred == setup.y
    assert not result.success[1][correct].any()
    assert torch.equal(result.success[1], ~correct)
    assert result.accuracy(setup.y)[1] == 1 - result.success[1].float().mean()


def test_one_inf_pixel_invalidates_only_its_image(setup: Setup) -> None:
    def poison(x: Tensor) -> Tensor:
        out = x.clone()
        out[3, 0, 2, 2] = math.inf
        return out

    result = Noise(poison)(setup.model, setup.x, setup.y, 0.1)
    assert result.invalid_output is not None
    assert result.invalid_output[0].nonzero().flatten().tolist() == [3]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_output_outside_the_ball_or_box_is_flagged(setup: Setup, norm: str) -> None:
    attack = Noise(lambda x: x + 0.5)
    attack.norm = norm
    result = attack(setup.model, setup.x, setup.y, [0.0, 0.1])
    assert result.projected_output is not None
    assert not result.projected_output[0].any() and result.projected_output[1].all()
    assert not result.invalid_output.any()
    delta = (result.adv[1] - setup.x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert size.max() <= 0.1 + 1e-6 and result.adv.max() <= 1


def test_only_leaving_the_box_is_flagged(setup: Setup) -> None:
    inside = Noise(lambda x: (x + 0.05).clamp(0, 1))(setup.model, setup.x, setup.y, 0.1)
    assert inside.projected_output is not None and not inside.projected_output.any()
    box = Noise(lambda x: x - 0.05)(setup.model, setup.x, setup.y, 0.1)
    assert box.projected_output is not None
    leaves = (setup.x - 0.05).flatten(1).amin(1) < 0
    assert torch.equal(box.projected_output[0], leaves)


def test_wrong_shape_is_a_user_error_naming_the_attack(setup: Setup) -> None:
    with pytest.raises(UserError, match=r"^attack Noise returned images of shape \(1, 8, 8\)"):
        Noise(lambda x: x[0])(setup.model, setup.x, setup.y, 0.1)
    with pytest.raises(UserError, match="attack Noise returned a ndarray for a batch of shape"):
        Noise(lambda x: x.numpy())(setup.model, setup.x, setup.y, 0.1)
    with pytest.raises(UserError, match="attack Noise returned success steps"):
        Noise(lambda x: (x, torch.zeros(3)))(setup.model, setup.x, setup.y, 0.1)


@pytest.mark.parametrize(
    "name, kwargs, eps",
    [
        ("pgd", {"steps": 5}, [0.0, 0.05, 0.3]),
        ("pgd", {"steps": 5, "norm": "l2"}, [0.05, 1.0, 3.0]),
        ("fgsm", {}, [0.1, 0.5]),
        ("fgm", {}, [0.05, 2.0]),
        ("apgd_ce", {"steps": 5}, [0.1]),
        ("square", {"n_queries": 20}, [0.1]),
        ("deepfool", {"steps": 5}, [0.0, 0.5, 1.0]),
        ("cw_l2", {"steps": 5, "binary_search_steps": 2}, [0.5]),
        ("art:ProjectedGradientDescent", {"max_iter": 3}, [0.1]),
        ("foolbox:L2PGD", {"steps": 3}, [0.5]),
    ],
)
def test_well_behaved_attacks_raise_no_flag(
    setup: Setup, name: str, kwargs: dict, eps: list
) -> None:
    result = ATTACKS.create(name, **kwargs)(setup.model, setup.x, setup.y, eps)
    assert result.invalid_output is not None and not result.invalid_output.any()
    assert result.projected_output is not None and not result.projected_output.any()


# -- success from the final images; clean predictions shared --------------------------
def test_given_clean_predictions_skip_the_clean_pass(setup: Setup) -> None:
    calls: list[int] = []
    handle = setup.model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        clean = setup.model(setup.x).argmax(1)
        calls.clear()
        given = ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, [0.0, 0.1], clean_pred=clean)
        with_given = len(calls)
        calls.clear()
        fresh = ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, [0.0, 0.1])
    finally:
        handle.remove()
    # fgsm's own pass and the final prediction at 0.1; the clean one only when not given
    assert with_given == 2 and len(calls) == 3
    for field in ("adv", "pred", "success", "clean_pred"):
        assert torch.equal(getattr(given, field), getattr(fresh, field))


def test_clean_predictions_of_the_wrong_shape_are_refused(setup: Setup) -> None:
    with pytest.raises(ValueError, match="clean_pred"):
        ATTACKS.create("fgsm")(setup.model, setup.x, setup.y, 0.1, clean_pred=setup.y[:3])


def test_success_steps_agree_with_the_final_images(setup: Setup) -> None:
    """PGD does not check its last iterate itself; the base's final prediction fills it."""
    for steps in (1, 3):
        attack = ATTACKS.create("pgd", steps=steps)
        result = attack(setup.model, setup.x, setup.y, [0.0, 0.03, 0.1])
        assert result.success_step is not None
        assert torch.equal(result.success_step >= 0, result.success)
        assert result.success_step.max() <= attack.iterations


def test_results_built_without_the_new_fields_still_work() -> None:
    result = AttackResult(
        eps=(0.1,),
        adv=torch.zeros(1, 2, 1, 8, 8),
        success=torch.zeros(1, 2, dtype=torch.bool),
        pred=torch.zeros(1, 2, dtype=torch.long),
        clean_pred=torch.zeros(2, dtype=torch.long),
    )
    assert result.forward_passes == () and result.invalid_output is None


def test_counting_works_on_a_model_without_parameters() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Identity())
    x = torch.rand(4, 1, 2, 5)
    result = ATTACKS.create("fgsm")(model, x, torch.tensor([0, 1, 2, 3]), 0.1)
    assert result.forward_passes == (1.0,) and result.backward_passes == (1.0,)
