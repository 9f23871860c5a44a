"""Binarization test (Zimmermann et al. 2022): strong attacks pass, weak ones fail, seeded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.binarization import (
    INVALID,
    PASSED,
    binarization_test,
    boundary_points,
    distances,
    inner_points,
)
from robustbench_gan.registry import ATTACKS
from robustbench_gan.utils import torch_generator

EPS = 0.1
SMALL = {"n_inner": 49, "n_boundary": 1}


@pytest.fixture(scope="module")
def honest(digits, digits_mlp):
    """A normally trained MLP on digits and 20 test images."""
    return digits_mlp, digits.x_test[:20], digits.y_test[:20]


def weak_attack():
    return ATTACKS.create("pgd", steps=1, rel_stepsize=0.01, random_start=False)


@pytest.mark.parametrize("name", ["pgd", "apgd_ce"])
def test_strong_attacks_pass_on_an_honest_model(honest, name):
    model, x, y = honest
    result = binarization_test(model, ATTACKS.create(name, steps=40), x, y, EPS, "linf", **SMALL)
    assert result.valid >= 15
    assert result.pass_rate >= 0.9


def test_a_weak_attack_fails_clearly(honest):
    model, x, y = honest
    strong = binarization_test(model, ATTACKS.create("pgd", steps=40), x, y, EPS, **SMALL)
    weak = binarization_test(model, weak_attack(), x, y, EPS, **SMALL)
    assert weak.valid == strong.valid
    assert weak.pass_rate <= strong.pass_rate - 0.5


def test_l2_pgd_passes(honest):
    model, x, y = honest
    attack = ATTACKS.create("pgd", norm="l2", steps=40)
    result = binarization_test(model, attack, x[:10], y[:10], 0.5, "l2", **SMALL)
    assert result.valid >= 8 and result.pass_rate >= 0.9


def test_same_seed_same_outcome_and_points_in_the_ball(honest):
    model, x, y = honest
    runs = [
        binarization_test(model, ATTACKS.create("pgd", steps=10), x, y, EPS, seed=3, **SMALL)
        for _ in range(2)
    ]
    assert runs[0].outcomes == runs[1].outcomes
    assert torch.equal(runs[0].adv, runs[1].adv)
    passed = torch.tensor([o == PASSED for o in runs[0].outcomes])
    adv = runs[0].adv[passed]
    assert len(adv) > 0
    assert bool((distances(adv, x[passed], "linf") <= EPS + 1e-6).all())
    assert bool((adv >= 0).all() and (adv <= 1).all())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_sampled_points(digits, norm):
    x = digits.x_test[0]
    gen = torch_generator(0)
    inner = inner_points(x, 30, 0.95 * EPS, norm, gen)
    boundary = boundary_points(x, 30, EPS, norm, gen)
    assert torch.equal(inner[0], x) and len(inner) == 31
    assert bool((distances(inner, x.unsqueeze(0), norm) <= 0.95 * EPS + 1e-6).all())
    d = distances(boundary, x.unsqueeze(0), norm)
    assert bool((d <= EPS + 1e-6).all()) and bool((d >= EPS - 1e-4).all())
    for points in (inner, boundary):
        assert bool((points >= 0).all() and (points <= 1).all())


class HalfBlind(nn.Module):
    """Classifies as the honest model; its features are zero for dark images (mean pixel
    below the median), so their inner and boundary points cannot be told apart."""

    def __init__(self, inner: nn.Module, threshold: float) -> None:
        super().__init__()
        self.inner, self.threshold = inner, threshold

    def forward(self, x):
        return self.inner(x)

    def features(self, x):
        bright = (x.flatten(1).mean(1) > self.threshold).float().view(-1, 1)
        return self.inner.features(x) * bright


def test_invalid_samples_are_counted_and_excluded(honest):
    model, x, y = honest
    means = x.flatten(1).mean(1)
    threshold = float(means.median())
    eps = 0.01  # the images' means lie close together
    result = binarization_test(
        HalfBlind(model, threshold), ATTACKS.create("pgd", steps=40), x, y, eps, **SMALL
    )
    # a point within eps (Linf) of a dark image has a mean within eps of its own: dark too
    dark = [o for o, m in zip(result.outcomes, means) if m <= threshold - eps]
    assert dark and all(o in (INVALID, "misclassified") for o in dark)
    assert result.invalid >= sum(o == INVALID for o in dark) > 0
    assert result.valid + result.invalid + result.count("misclassified") == len(x)
    assert result.valid > 0 and result.pass_rate == result.passed / result.valid


def test_model_without_features_and_attack_needing_classes_are_user_errors(honest):
    model, x, y = honest
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(UserError, match="features"):
        binarization_test(plain, ATTACKS.create("pgd"), x, y, EPS, **SMALL)
    dlr = ATTACKS.create("apgd_dlr")
    assert dlr.min_classes > 2
    with pytest.raises(UserError, match="min_classes"):
        binarization_test(model, dlr, x, y, EPS, **SMALL)
    with pytest.raises(UserError, match="norm"):
        binarization_test(model, ATTACKS.create("pgd"), x, y, EPS, "l2", **SMALL)


def test_cli_end_to_end(honest, tmp_path, capsys):
    model, _, _ = honest
    weights = tmp_path / "mlp.pt"
    torch.save(model.state_dict(), weights)
    argv = ["audit-attack", "--model", "mlp", "--weights", str(weights), "--dataset", "digits"]
    argv += ["--eps", "0.1", "--n", "10", "--n-inner", "19", "--no-progress"]
    argv += ["--attack", "pgd,fgsm", "--attack-param", "pgd.steps=20"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["attack", "eps", "valid", "passed"]
    assert lines[1].startswith("pgd(steps=20)") and lines[2].startswith("fgsm")
    assert "1.000" in lines[1]  # PGD passes every valid image here


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attack", "apgd_dlr"], "min_classes"),
        (["--attack", "pgdd"], "unknown attack"),
        (["--attack", "pgd", "--attack-param", "nope=1"], "nope"),
        (["--attack", "pgd", "--threat-model", "L7"], "threat-model"),
    ],
)
def test_cli_bad_options_are_one_line(extra, message, capsys):
    argv = ["audit-attack", "--model", "mlp", "--dataset", "digits", "--eps", "0.1"]
    assert main([*argv, "--n", "2", "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rbg: error:") and message in err[0]
