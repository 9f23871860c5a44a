"""Sanity checks that tell a reviewer not to trust a robustness number, in the spirit of
AutoAttack's checks (Croce & Hein 2020) and Carlini et al. 2019, "On evaluating
adversarial robustness".

Model-level checks run once per evaluated model (``audit_model``); row-level checks
look at the leaderboard (``evaluations.audit.audit_flags``). Every flag is a short
snake_case word written into the leaderboard's ``flags`` column.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attacks.base import frozen
from ..registry import ATTACKS
from ..utils import model_device

#: flag -> what it means (the report prints this legend)
FLAG_MEANINGS = {
    "acc_rises_with_eps": "robust accuracy is higher than at a smaller eps (a broken attack)",
    "eps0_not_clean": "at eps 0 robust accuracy differs from clean accuracy",
    "black_box_beats_white_box": "a black-box attack beats the best white-box attack by more "
    "than 1 point at this eps (gradient masking?)",
    "zero_gradients": "more than 1% of correctly classified images have an all-zero input "
    "gradient (gradient masking; white-box numbers are not trustworthy)",
    "outputs_probabilities": "the model outputs probabilities, not logits (softmax saturates "
    "gradients; attack the logits)",
    "nondeterministic": "two forward passes on the same input differ (randomised defense: use EOT)",
    "non_finite_outputs": "the model gives NaN or inf logits on some evaluation images: its "
    "predictions there are arbitrary, and so are its clean and robust accuracy",
    "unbounded_attack_fails": "PGD with eps = 1 (the whole image space) leaves more than 5% "
    "accuracy: the attack cannot follow the model's gradients",
    "near_chance": "clean accuracy is within 1.5x of chance (1 / number of classes): check the "
    "input scale ([0, 1]), the normalization and the class order before reading robustness",
    "invalid_output": "the attack returned non-finite images for some inputs; they were "
    "counted as not fooled (a bug in the attack: its robust accuracy is an upper bound)",
    "projected_output": "the attack returned images outside the eps-ball or [0, 1]; they were "
    "projected back (an attack that ignores its budget may be weaker than it should be)",
    "naive_evaluation": "the attacks saw only the classifier, not the purifier in front of it "
    "(Defense-GAN, gradient = naive): a number for comparison, not a robustness claim; the "
    "BPDA + EOT row of the same model is the one to trust",
}

#: part of every audit cell's spec: bump it when a check changes, so cached audits rerun
CHECKS_VERSION = 3
ZERO_GRADIENT_SHARE = 0.01
UNBOUNDED_ACCURACY = 0.05
UNBOUNDED_EPS = 1.0


def audit_model(model: nn.Module, x: Tensor, y: Tensor, *, seed: int) -> dict[str, Any]:
    """Run the model-level checks on (x, y); returns measurements and the flags raised."""
    device = model_device(model)
    with frozen(model):
        logits = model(x.to(device))
        again = model(x.to(device))
        zero_share = zero_gradient_share(model, x.to(device), y.to(device), logits)
    probabilities = bool(
        (logits >= 0).all()
        and torch.allclose(logits.sum(1), torch.ones(len(x), device=device), atol=1e-3)
    )
    nondeterministic = not same_outputs(logits, again)
    # no random start: at eps 1 it would replace every image by noise, which a model may
    # map to one class and hold there (a standard MNIST CNN did, at 10% accuracy)
    pgd = ATTACKS.create("pgd", steps=20, random_start=False, seed=seed)
    unbounded = pgd(model, x, y, [UNBOUNDED_EPS])
    unbounded_acc = float(unbounded.accuracy(y)[0])
    flags = [
        name
        for name, raised in (
            ("zero_gradients", zero_share > ZERO_GRADIENT_SHARE),
            ("outputs_probabilities", probabilities),
            ("nondeterministic", nondeterministic),
            ("non_finite_outputs", not bool(torch.isfinite(logits).all())),
            ("unbounded_attack_fails", unbounded_acc > UNBOUNDED_ACCURACY),
            ("naive_evaluation", bool(getattr(model, "naive_gradients", False))),
        )
        if raised
    ]
    return {
        "zero_gradient_share": zero_share,
        "outputs_probabilities": probabilities,
        "nondeterministic": nondeterministic,
        "unbounded_acc": unbounded_acc,
        "flags": flags,
    }


def same_outputs(first: Tensor, second: Tensor) -> bool:
    """Whether two forward passes gave the same outputs, exactly: NaN equals NaN and inf
    equals inf of its sign (``torch.equal`` holds NaN unequal to itself, so a deterministic
    model with some non-finite outputs would pass for a random one)."""
    if first.shape != second.shape or first.dtype != second.dtype:
        return False
    return torch.allclose(first, second, rtol=0, atol=0, equal_nan=True)


def zero_gradient_share(model: nn.Module, x: Tensor, y: Tensor, logits: Tensor) -> float:
    """Share of correctly classified images whose cross-entropy input gradient is all zero."""
    correct = logits.argmax(1) == y
    if not correct.any():
        return 0.0
    x_ok = x[correct].detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(
            F.cross_entropy(model(x_ok), y[correct], reduction="sum"), x_ok
        )
    zero = grad.flatten(1).abs().amax(1) == 0
    return float(zero.float().mean())
