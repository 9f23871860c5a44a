"""`autoattack` by name: AutoAttack's lists with its defaults, as a preset of cascade; and
APGD's EOT for randomized defenses (the `rand` version)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import ATTACKS, CLASSIFIERS

EPS = [0.05, 0.1]


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "small_cnn", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=6, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    return model.eval(), digits.x_test[:80], digits.y_test[:80]


def test_the_lists_and_defaults_are_autoattacks():
    standard = ATTACKS.create("autoattack")
    assert standard.parts == ("apgd-ce", "apgd-t", "fab-t", "square")
    apgd_ce, apgd_t, fab_t, square = standard.attacks
    assert apgd_ce.steps == apgd_t.steps == fab_t.steps == 100
    assert apgd_ce.restarts == apgd_t.restarts == fab_t.restarts == 1
    assert apgd_t.targeted and not fab_t.targeted and fab_t.n_target_classes == 9
    assert standard.n_target_classes == 9 and square.n_queries == 5000
    plus = ATTACKS.create("autoattack", version="plus")
    assert plus.parts == ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
    # Square as AutoAttack builds it: SquareAttack(p_init=.8, n_queries=5000,
    # resc_schedule=False), one window per iteration for the batch, 5,000 iterations
    for aa_square in (square, plus.attacks[3]):
        assert (aa_square.n_queries, aa_square.p_init, aa_square.window_iterations) == (
            5000,
            0.8,
            5000,
        )
        assert not aa_square.rescale_schedule and aa_square.window_per == "batch"
        assert not aa_square.edge_windows and not aa_square.start_counts
    assert [getattr(a, "restarts", None) for a in plus.attacks] == [5, 5, 5, None, 1, 1]
    rand = ATTACKS.create("autoattack", version="rand")
    assert rand.parts == ("apgd-ce", "apgd-dlr") and all(a.eot_iter == 20 for a in rand.attacks)
    l2 = ATTACKS.create("autoattack", norm="l2")
    assert l2.parts == ("apgd-ce", "apgd-t", "fab-t") and all(a.norm == "l2" for a in l2.attacks)
    assert "autoattack" in ATTACKS.list()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"version": "quick"}, "version"), ({"steps": 0}, "steps"), ({"targeted": True}, "target")],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ATTACKS.create("autoattack", **kwargs)


def test_at_least_as_strong_as_each_part_and_attributed(setup):
    model, x, y = setup
    aa = ATTACKS.create("autoattack", steps=10, n_queries=100, n_target_classes=3)
    result = aa(model, x, y, EPS)
    acc = result.accuracy(y)
    for part in ("apgd_ce", "fab"):
        alone = ATTACKS.create(part, steps=10)(model, x, y, EPS).accuracy(y)
        assert (acc <= alone + 1e-12).all(), (part, acc, alone)
    assert (acc[1] <= acc[0]).all()
    for i, fooled in enumerate(aa.fooled_by):
        # each image the composite fooled is credited to exactly one of its parts
        assert ((fooled >= 0) == (result.pred[i] != y) & (result.clean_pred == y)).all()
    assert (result.adv - x).abs().amax() <= max(EPS) + 1e-6


def test_same_seed_same_numbers(setup):
    model, x, y = setup
    runs = [
        ATTACKS.create("autoattack", steps=5, n_queries=50, n_target_classes=2, seed=3)(
            model, x, y, EPS
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adv, runs[1].adv)


class Noisy(nn.Module):
    """A randomized defense: Gaussian noise on the input of a fixed model."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x + 0.05 * torch.randn_like(x))


def test_eot_averages_the_gradient_over_draws(setup):
    model, x, y = setup
    noisy = Noisy(model).eval()
    one = ATTACKS.create("apgd_ce", steps=1, eot_iter=1)
    many = ATTACKS.create("apgd_ce", steps=1, eot_iter=20)
    point = x[:16].clone()
    torch.manual_seed(0)
    _, g1, _ = one._loss_and_gradient(noisy, point, y[:16], None)
    torch.manual_seed(1)
    _, g1b, _ = one._loss_and_gradient(noisy, point, y[:16], None)
    torch.manual_seed(0)
    _, g20, _ = many._loss_and_gradient(noisy, point, y[:16], None)
    torch.manual_seed(1)
    _, g20b, _ = many._loss_and_gradient(noisy, point, y[:16], None)
    # averaged gradients vary less between two sets of draws than single draws do
    assert (g20 - g20b).norm() < 0.5 * (g1 - g1b).norm()
    result = ATTACKS.create("apgd_ce", steps=3, eot_iter=4)(noisy, x[:16], y[:16], [0.1])
    assert result.backward_passes[0] == pytest.approx(3 * 4, abs=12)
    with pytest.raises(ValueError, match="eot_iter"):
        ATTACKS.create("apgd_ce", eot_iter=0)
