"""An attack, an audit or a prediction leaves every submodule of the user's model in its own
mode: a wrapper in train mode around a pretrained net in eval mode, or mixed modes, come back
exactly, with BatchNorm's running statistics untouched."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from robustbench_gan.indicators.checks import budget_checks, model_checks
from robustbench_gan.registry import ATTACKS
from robustbench_gan.utils import eval_mode, predict

#: cheap settings: only the modes are checked here
FAST: dict[str, dict] = {
    "pgd": {"steps": 2},
    "apgd_ce": {"steps": 2},
    "apgd_dlr": {"steps": 2},
    "bim": {"steps": 2},
    "mifgsm": {"steps": 2},
    "cw_l2": {"steps": 2, "binary_search_steps": 1},
    "deepfool": {"steps": 2},
    "fab": {"steps": 2},
    "square": {"n_queries": 5},
    "autoattack": {"steps": 2, "n_queries": 5, "n_target_classes": 2},
    "cascade": {"attacks": [{"name": "apgd_ce", "steps": 2}, {"name": "square", "n_queries": 5}]},
}
NATIVE = [
    n for n in ATTACKS.list()
    if not any(getattr(ATTACKS.get(n), need, False) for need in ("needs_training_data", "needs_residual_blocks"))
]  # fmt: skip
ADAPTERS = {"art:FastGradientMethod": "art", "foolbox:LinfPGD": "foolbox"}


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def bn_cnn() -> nn.Sequential:
    """A small CNN with BatchNorm for 1x8x8 digits, its running statistics moved off their
    initial values."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
        nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip
    with torch.no_grad():
        net.train()(torch.rand(32, 1, 8, 8))
    return net


def wrapped() -> nn.Module:
    """``nn.Sequential(normalize, pretrained.eval())``: the new wrapper in train mode."""
    return nn.Sequential(Normalize(0.3, 0.3), bn_cnn().eval())


def mixed() -> nn.Module:
    """Top in eval mode, one BatchNorm and the Dropout in train mode, the rest in eval."""
    net = bn_cnn().eval()
    net[1].train()
    net[3].train()
    return net


def modes(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def buffers(model: nn.Module) -> dict[str, Tensor]:
    return {name: b.clone() for name, b in model.named_buffers()}


def assert_as_found(model: nn.Module, before_modes: dict, before_buffers: dict) -> None:
    assert modes(model) == before_modes
    after = buffers(model)
    assert after.keys() == before_buffers.keys()
    assert all(torch.equal(after[k], before_buffers[k]) for k in after), "BatchNorm stats moved"


@pytest.mark.parametrize("build", [wrapped, mixed])
@pytest.mark.parametrize("name", NATIVE + list(ADAPTERS))
def test_every_attack_leaves_each_module_in_its_mode(digits, build, name):
    if name in ADAPTERS:
        pytest.importorskip(ADAPTERS[name])
    model = build()
    before_modes, before_buffers = modes(model), buffers(model)
    assert len(set(before_modes.values())) == 2  # the case is a mixed one
    x, y = digits.x_test[:12], digits.y_test[:12]
    ATTACKS.create(name, **FAST.get(name, {}))(model, x, y, [0.1])
    assert_as_found(model, before_modes, before_buffers)


@pytest.mark.parametrize("build", [wrapped, mixed])
def test_audit_and_predict_leave_each_module_in_its_mode(digits, build):
    model = build()
    before_modes, before_buffers = modes(model), buffers(model)
    x, y = digits.x_test[:12], digits.y_test[:12]
    labels = predict(model, x)
    assert_as_found(model, before_modes, before_buffers)
    model_checks(model, x, y, seed=0)
    budget_checks(model, x, y, "linf", 0.1)
    assert_as_found(model, before_modes, before_buffers)
    with eval_mode(model), torch.no_grad():
        assert not any(modes(model).values())
        assert torch.equal(model(x).argmax(1), labels)  # predict ran in eval mode


def test_eval_mode_restores_after_an_error():
    model = mixed()
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        assert not any(modes(model).values())
        raise RuntimeError("boom")
    assert modes(model) == before
