"""Defense-GAN: the projection, its three gradients, and the known BPDA result, on digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import train_tiny_cnn

from robustbench_gan.attacks.remedies import Majority
from robustbench_gan.contract.surface import gradient_approximation
from robustbench_gan.errors import UserError
from robustbench_gan.gans import train_gan
from robustbench_gan.indicators.checks import indicators_of
from robustbench_gan.registry import ATTACKS, DEFENSES, GENERATORS

FAST = {"steps": 20, "restarts": 2, "lr": 0.5}


@pytest.fixture(scope="module")
def parts(digits):
    x, y = digits.x_train, digits.y_train
    model = train_tiny_cnn(x, y)
    torch.manual_seed(0)
    gan = GENERATORS.create("dcgan", in_shape=(1, 8, 8), nz=16, ngf=16, ndf=16)
    train_gan(gan, x, None, steps=300, batch_size=64, seed=0, progress=False)
    return model.eval(), gan.eval(), digits


def defended(parts, **kwargs):
    model, gan, _ = parts
    return DEFENSES.create("defense_gan", generator=gan, **{**FAST, **kwargs}).build([model])


def test_projection_gets_closer_than_a_random_sample(parts):
    _, gan, data = parts
    x = data.x_test[:64]
    wrapped = defended(parts)
    projected = wrapped.project(x)
    random = gan.sample(64, seed=1)
    error = (projected - x).pow(2).flatten(1).sum(1).mean()
    assert error < 0.5 * (random - x).pow(2).flatten(1).sum(1).mean()
    assert projected.min() >= 0 and projected.max() <= 1


def test_predictions_classify_the_projection(parts):
    model, _, data = parts
    x = data.x_test[:32]
    a, b = defended(parts, seed=3), defended(parts, seed=3)
    with torch.no_grad():
        assert torch.equal(a(x), model(b.project(x)))  # same seed, same restarts


def input_gradient(net, x, y):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(net(x), y, reduction="sum"), x)
    return grad


def test_naive_gradient_is_the_classifiers_and_bpda_the_projections(parts):
    model, _, data = parts
    x, y = data.x_test[:16], data.y_test[:16]
    assert torch.allclose(input_gradient(defended(parts, gradient="naive"), x, y),
                          input_gradient(model, x, y))  # fmt: skip
    bpda = defended(parts, gradient="bpda", eot=1, seed=5)
    projected = defended(parts, seed=5).project(x)
    expected = input_gradient(model, projected, y)  # x + (G(z*) - x) rounds like G(z*)
    assert torch.allclose(input_gradient(bpda, x, y), expected, rtol=1e-3, atol=1e-4)
    unrolled = input_gradient(defended(parts, gradient="unrolled", steps=5), x, y)
    assert unrolled.abs().sum() > 0  # exact gradients flow through the descent


def test_bpda_finds_what_the_naive_evaluation_misses(parts):
    """The known result (Athalye et al. 2018): attacking through the projection (BPDA with
    EOT) leaves less robust accuracy than attacking the classifier alone."""
    _, _, data = parts
    x, y = data.x_test[:100], data.y_test[:100]
    naive, bpda = 0.0, 0.0
    for seed in range(3):  # the projection draws per batch: compare over a few PGD seeds
        pgd = ATTACKS.create("pgd", steps=10, seed=seed)
        naive += float(pgd(defended(parts, gradient="naive"), x, y, [0.3]).accuracy(y)[0]) / 3
        bpda += float(pgd(defended(parts, gradient="bpda", eot=2), x, y, [0.3]).accuracy(y)[0]) / 3
    assert bpda < naive, (bpda, naive)


def test_audit_flags_the_naive_evaluation(parts):
    _, _, data = parts
    x, y = data.x_test[:20], data.y_test[:20]
    assert "naive_evaluation" in indicators_of(defended(parts, gradient="naive"), x, y)
    assert "naive_evaluation" not in indicators_of(defended(parts), x, y)


def test_every_mode_declares_the_bpda_stand_in(parts):
    """Whatever gradient the attacks see, the model offers BPDA + EOT as its stand-in
    (contract/surface.py), so the adaptive attack can undo a naive evaluation."""
    _, _, data = parts
    x, y = data.x_test[:16], data.y_test[:16]
    want = input_gradient(defended(parts, gradient="bpda", eot=1, seed=5), x, y)
    for mode in ("naive", "unrolled", "bpda"):
        stand_in = gradient_approximation(defended(parts, gradient=mode, eot=1, seed=5))
        assert torch.allclose(input_gradient(stand_in, x, y), want, rtol=1e-3, atol=1e-4), mode


def test_adaptive_overturns_the_naive_evaluation(parts):
    _, _, data = parts
    x, y = data.x_test[:60], data.y_test[:60]
    model = defended(parts, gradient="naive", eot=2)
    cheap = {"steps": 10, "n_queries": 100}
    torch.manual_seed(0)
    standard = ATTACKS.create("autoattack", **cheap)(model, x, y, [0.3])
    attack = ATTACKS.create("adaptive", **cheap)
    torch.manual_seed(0)
    adaptive = attack(model, x, y, [0.3])
    assert "naive_evaluation" in attack.fired[0] and "bpda" in attack.ran[0]
    # BPDA breaks images the standard list left standing (judged by 5 draws: one lucky draw
    # of the random restarts is no success); the final accuracy is one draw, as AutoAttack's
    broken = attack.fooled_by[0] >= attack.n_standard
    assert broken.any() and set(attack.fooled_by[0][broken].tolist()) & {
        i for i, part in enumerate(attack.parts) if part.startswith("bpda")
    }
    # the final verdict of a randomized model is one draw, which flips an image either way
    # (FAB's draws of the projection moved it by one image of 60 before): the examples are
    # compared by the share of 15 draws that classify them right, summed over the images
    judge = Majority(model, 15)
    with torch.no_grad():
        right = [judge.correct_votes(r.adv[0], y).sum() for r in (adaptive, standard)]
    assert right[0] <= right[1], right


def test_bad_settings(parts):
    model, gan, _ = parts
    with pytest.raises(ValueError):
        DEFENSES.create("defense_gan", generator=gan, gradient="magic")
    with pytest.raises(ValueError):
        DEFENSES.create("defense_gan", generator=gan, steps=0)
    conditional = GENERATORS.create("cdcgan", in_shape=(1, 8, 8), nz=8, ngf=8, ndf=8)
    with pytest.raises(UserError, match="unconditional"):
        DEFENSES.create("defense_gan", generator=conditional)
    with pytest.raises(UserError):
        DEFENSES.create("defense_gan", generator=gan).build([model, model])
