"""Audit flags: gradient masking, probabilities, randomness and broken attacks are caught."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.evaluations.audit import audit_flags
from robustbench_gan.evaluations.audit_checks import FLAG_MEANINGS, audit_model
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import CLASSIFIERS


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "mlp", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    train_classifier(
        model,
        digits.x_train,
        digits.y_train,
        config=TrainConfig(epochs=5, lr=3e-3),
        seed=0,
        progress=False,
    )
    return model.eval(), digits.x_test[:200], digits.y_test[:200]


class Softmaxed(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).softmax(1)


class Quantized(nn.Module):
    """Rounds the input to 0/1 first: its input gradient is zero everywhere."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x))


class Noisy(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x + 0.05 * torch.randn_like(x))


def test_a_plain_model_raises_no_flag(trained):
    model, x, y = trained
    report = audit_model(model, x, y, seed=0)
    assert report["flags"] == []
    assert report["unbounded_acc"] <= 0.05


@pytest.mark.parametrize(
    "wrapper, expected",
    [
        (Softmaxed, "outputs_probabilities"),
        (Quantized, "zero_gradients"),
        (Quantized, "unbounded_attack_fails"),
        (Noisy, "nondeterministic"),
    ],
)
def test_suspicious_models_are_flagged(trained, wrapper, expected):
    model, x, y = trained
    assert expected in audit_model(wrapper(model).eval(), x, y, seed=0)["flags"]
    assert expected in FLAG_MEANINGS


def frame(rows):
    base = {"target": "m", "defense": "none", "norm": "linf", "clean_acc": 0.9, "_black_box": False}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_row_flags():
    rows = frame(
        [
            {"attack": "pgd", "eps": 0.0, "robust_acc": 0.9},
            {"attack": "pgd", "eps": 0.1, "robust_acc": 0.5},
            {"attack": "pgd", "eps": 0.2, "robust_acc": 0.6},  # rises
            {"attack": "square", "eps": 0.0, "robust_acc": 0.8, "_black_box": True},  # != clean
            {"attack": "square", "eps": 0.1, "robust_acc": 0.3, "_black_box": True},  # beats pgd
            {"attack": "square", "eps": 0.2, "robust_acc": 0.2, "_black_box": True},
        ]
    )
    flags = audit_flags(rows, {("m", "none"): ["zero_gradients"]})
    assert flags[2] == "acc_rises_with_eps;black_box_beats_white_box;zero_gradients"
    assert flags[3] == "eps0_not_clean;black_box_beats_white_box;zero_gradients"
    assert flags[1] == "black_box_beats_white_box;zero_gradients"
    assert flags[0] == "black_box_beats_white_box;zero_gradients"  # square 0.8 < pgd 0.9 at eps 0
    assert audit_flags(rows.iloc[:3], {}).tolist() == ["", "", "acc_rises_with_eps"]


def test_near_chance_clean_accuracy_is_flagged():
    rows = pd.DataFrame(
        [
            {"target": t, "defense": "none", "attack": "fgsm", "norm": "linf", "eps": 0.0,
             "clean_acc": acc, "robust_acc": acc, "_black_box": False}
            for t, acc in (("good", 0.9), ("broken", 0.12))
        ]
    )  # fmt: skip
    assert audit_flags(rows, {}, num_classes=10).tolist() == ["", "near_chance"]
    assert audit_flags(rows, {}).tolist() == ["", ""]  # unknown number of classes
