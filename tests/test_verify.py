"""Verifying external adversarial examples: per-image checks, accuracies, nothing clipped."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustbench_gan.errors import UserError
from robustbench_gan.verify import load_adversarial, verify_adversarial

EPS = 0.1


@pytest.fixture
def setup():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    x = torch.rand(20, 2, 4, 4, generator=generator) * 0.8 + 0.1
    y = torch.randint(0, 3, (20,), generator=generator)
    noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * EPS
    adv = (x + noise).clamp(0, 1)
    return model, x, y, adv


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_in_ball_examples_pass_and_score_as_plain_accuracy(setup):
    model, x, y, adv = setup
    report = verify_adversarial(model, x, y, adv, eps=EPS, batch_size=7)
    assert report.n == 20 and bool(report.valid.all())
    assert report.violations() == {"nonfinite": [], "out_of_range": [], "outside_ball": []}
    assert report.robust_acc == pytest.approx(accuracy(model, adv, y))
    assert report.robust_acc_valid == report.robust_acc
    assert report.clean_acc == pytest.approx(accuracy(model, x, y))
    assert float(report.distance.max()) <= EPS + 1e-6
    assert "20 valid, 0 invalid" in report.summary()


def test_first_n_points_and_the_l2_ball(setup):
    model, x, y, adv = setup
    report = verify_adversarial(model, x, y, adv[:5], eps=EPS, norm="Linf")
    assert report.n == 5 and report.clean_acc == pytest.approx(accuracy(model, x[:5], y[:5]))
    l2 = (adv - x).flatten(1).norm(dim=1)
    report = verify_adversarial(model, x, y, adv, eps=float(l2[3]), norm="l2")
    assert report.norm == "L2"
    assert report.violations()["outside_ball"] == [int(i) for i in (l2 > l2[3]).nonzero()]


def test_each_violation_is_reported_and_excluded_and_nothing_is_clipped(setup):
    model, x, y, adv = setup
    eps = 0.6
    adv = adv.clone()
    x[1, 0, 0, 0], adv[1, 0, 0, 0] = 0.95, 1.5  # within eps of the clean pixel, above 1
    adv[2, 1, 2, 3] = float("nan")
    x[3, 0, 0, 0], adv[3, 0, 0, 0] = 0.0, 0.8  # in [0, 1], outside the ball
    before = adv.clone()
    report = verify_adversarial(model, x, y, adv, eps=eps)
    assert torch.equal(adv.nan_to_num(-7), before.nan_to_num(-7))  # nothing clipped or fixed
    assert report.violations() == {"nonfinite": [2], "out_of_range": [1], "outside_ball": [3]}
    assert report.valid.tolist() == [i not in (1, 2, 3) for i in range(20)]
    assert math.isnan(float(report.distance[2]))
    with torch.no_grad():
        adv_right = model(before).argmax(1) == y
        clean_right = model(x).argmax(1) == y
    keep = report.valid
    assert report.robust_acc_valid == pytest.approx(float(adv_right[keep].float().mean()))
    expected = torch.where(keep, adv_right, clean_right).float().mean()
    assert report.robust_acc == pytest.approx(float(expected))
    summary = report.summary()
    assert "17 valid, 3 invalid" in summary
    assert "out of range: 1 (1)" in summary and "nonfinite: 1 (2)" in summary

    tight = verify_adversarial(model, x, y, adv, eps=EPS)  # image 1 is now outside too
    assert tight.violations()["outside_ball"] == [1, 3]


def test_wrong_shapes_and_dtypes_raise(setup):
    model, x, y, adv = setup
    with pytest.raises(UserError, match="do not match"):
        verify_adversarial(model, x, y, adv[:, :1], eps=EPS)
    with pytest.raises(UserError, match="do not match"):
        verify_adversarial(model, x[:5], y, adv, eps=EPS)  # more images than test points
    with pytest.raises(UserError, match="floating-point"):
        verify_adversarial(model, x, y, (adv * 255).to(torch.uint8), eps=EPS)
    with pytest.raises(UserError, match="norm"):
        verify_adversarial(model, x, y, adv, eps=EPS, norm="L1")


def test_load_adversarial(tmp_path, setup):
    adv = setup[3]
    torch.save(adv, tmp_path / "plain.pt")
    torch.save({"adv": adv, "labels": torch.zeros(3)}, tmp_path / "keyed.pt")
    torch.save({"x_adv": adv}, tmp_path / "single.pt")
    for name in ("plain.pt", "keyed.pt", "single.pt"):
        assert torch.equal(load_adversarial(tmp_path / name), adv)
    torch.save({"a": adv, "b": adv}, tmp_path / "two.pt")
    with pytest.raises(UserError, match='under "adv"'):
        load_adversarial(tmp_path / "two.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(UserError, match="weights_only") as err:
        load_adversarial(tmp_path / "module.pt")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="no adversarial examples file"):
        load_adversarial(tmp_path / "missing.pt")
