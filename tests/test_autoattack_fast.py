"""AutoAttack's ``fast`` version: the standard list in two stages, the expensive parts only
where an indicator of attack failure fires, APGD-T's targets chosen by MALT's linearized
distance. On an honest model: the standard verdict per image at a fraction of its passes; on a
masked one: the standard list runs whole."""

from __future__ import annotations

import pytest
import torch
from conftest import Quantized
from torch import nn

from robustbench_gan.api_suite import attack_requests
from robustbench_gan.attacks.targeting import by_linearized_distance, by_logits
from robustbench_gan.registry import ATTACKS


@pytest.fixture(scope="module")
def data(digits):
    return digits.x_test[:120], digits.y_test[:120]


def passes(result) -> float:
    return result.forward_passes[0] + result.backward_passes[0]


def test_on_an_honest_model_fast_gives_the_standard_verdict_for_a_third(tiny_cnn, data):
    """AutoAttack's settings: the same verdict on every image, nothing fired (so FAB-T and
    Square never ran), and at most a third of standard's passes."""
    x, y = data
    standard = ATTACKS.create("autoattack")(tiny_cnn, x, y, [0.1])
    attack = ATTACKS.create("autoattack", version="fast")
    fast = attack(tiny_cnn, x, y, [0.1])
    assert torch.equal(fast.success, standard.success)
    assert 0 < fast.success.float().mean() < 1  # some images broken, some robust
    assert attack.fired == [[]]
    assert set(attack.fooled_by[0].tolist()) <= {-1, 0, 1}  # APGD-CE and APGD-T only
    assert passes(fast) <= passes(standard) / 3, (passes(fast), passes(standard))


def test_where_an_indicator_fires_the_whole_standard_list_runs(tiny_cnn, data):
    """A rounding front: the gradients are unavailable, so FAB-T and Square run on the images
    the first stage left (Square breaks what the gradient attacks cannot), and fast is as low
    as standard."""
    x, y = data[0][:60], data[1][:60]
    model = Quantized(tiny_cnn).eval()
    settings = {"steps": 20, "n_queries": 300}
    standard = ATTACKS.create("autoattack", **settings)(model, x, y, [0.1])
    attack = ATTACKS.create("autoattack", version="fast", **settings)
    fast = attack(model, x, y, [0.1])
    assert "unavailable_gradients" in attack.fired[0]
    assert (attack.fooled_by[0] == attack.parts.index("square")).any()
    assert fast.accuracy(y)[0] <= standard.accuracy(y)[0] + 1 / len(y)


def test_the_decision_does_not_depend_on_the_batch_size(tiny_cnn, data):
    x, y = data
    runs = []
    for batch_size in (32, 256):
        attack = ATTACKS.create("autoattack", version="fast", steps=20, batch_size=batch_size)
        runs.append((attack(tiny_cnn, x, y, [0.1]).success, attack.fired))
    assert runs[0][1] == runs[1][1] == [[]]


def test_same_seed_same_numbers(tiny_cnn, data):
    x, y = data[0][:40], data[1][:40]
    runs = [
        ATTACKS.create("autoattack", version="fast", steps=10, seed=3)(tiny_cnn, x, y, [0.1])
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adv, runs[1].adv)


class Linear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T + self.bias


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_malt_ranks_by_the_exact_distance_on_a_linear_model(norm):
    """On a linear model the linearized distance to a boundary is the distance itself:
    ``(z_y - z_t) / ||w_y - w_t||_*``. Class 1 has the highest wrong logit, but its weights
    differ little from the true class's (a far boundary); class 2's differ much (a near one):
    MALT puts class 2 first, the logits class 1."""
    weight = torch.zeros(4, 3)
    weight[0, 0], weight[1, 0], weight[2, 1], weight[3, 2] = 1.0, 0.9, 5.0, 0.05
    bias = torch.tensor([2.0, 1.5, 1.0, 0.0])
    model = Linear(weight, bias)
    x, y = torch.zeros(1, 3), torch.tensor([0])
    ranked = by_linearized_distance(model, x, y, norm)
    assert ranked[0, 0] == 0 and sorted(ranked[0].tolist()) == [0, 1, 2, 3]
    with torch.no_grad():
        logits = model(x)
    dual = 1 if norm == "linf" else 2
    distance = {
        t: float((logits[0, 0] - logits[0, t]) / (weight[0] - weight[t]).norm(p=dual))
        for t in (1, 2, 3)
    }
    assert ranked[0, 1:].tolist() == sorted(distance, key=distance.get)
    assert by_logits(logits)[0, 1] == 1 and ranked[0, 1] == 2
    # only the first candidates are measured, the rest follow in logit order
    assert by_linearized_distance(model, x, y, norm, candidates=1)[0].tolist() == [0, 1, 2, 3]


def test_standard_fast_is_a_preset():
    ((name, label, params),) = attack_requests("standard_fast", "linf")
    assert (name, label, params["version"]) == ("autoattack", "standard_fast", "fast")
    fast = ATTACKS.create("autoattack", version="fast")
    assert fast.parts == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert fast.fast_targets == 3 and fast.attacks[1].restarts == 2
