"""A traced gradient probe: PGD on the margin loss that keeps every image's loss along its path.

The indicators of attack failure (Pintor et al. 2022) read an attack's loss along its path
(incomplete optimization) and compare a white-box attack with a transfer attack. The
project's attacks keep no path, so the indicators run this probe: Madry et al.'s PGD (2018)
with their step rule (``2.5 * eps / steps``), ``steps`` = 100 from the clean image (no random
start, so the probe of a deterministic model is deterministic), on the margin loss
``z_y - max_{j != y} z_j`` (scale-invariant in sign: it does not saturate the way
cross-entropy does), signed steps in Linf and normalized steps in L2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils import batch_slices

STEPS = 100


@dataclass
class Probe:
    """Per image: the point kept (the first adversarial iterate, else the last), whether some
    iterate was adversarial, whether the kept point is (judged again: a randomized model
    may disagree with itself), and the best margin after each step (``trace``, shape ``(steps + 1, N)``; step 0 is the clean image)."""

    adv: Tensor
    fooled_on_path: Tensor
    fooled: Tensor
    trace: Tensor


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """``z_y - max_{j != y} z_j`` per row: negative exactly when the prediction is wrong."""
    own = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
    return own - other


def project(adv: Tensor, x: Tensor, eps: float, norm: str) -> Tensor:
    delta = adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * (eps / size).clamp(max=1.0).view(-1, *[1] * (x.dim() - 1))
    return (x + delta).clamp(0.0, 1.0)


def step_direction(grad: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return grad.sign()
    size = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    return grad / size.view(-1, *[1] * (grad.dim() - 1))


def probe(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    norm: str,
    *,
    judge: nn.Module | None = None,
    steps: int = STEPS,
    loss: str = "margin",
    batch_size: int = 256,
) -> Probe:
    """Run the probe on ``model`` (its gradients) and judge success on ``judge`` (default the
    model itself; a transfer probe crafts on a stand-in and judges on the defended model).
    ``loss = "ce"`` descends minus the cross-entropy instead of the margin (what PGD sees)."""
    judge = model if judge is None else judge
    parts = [_probe_batch(model, judge, x[s], y[s], eps, norm, steps, loss) for s in
             batch_slices(len(x), batch_size)]  # fmt: skip
    return Probe(*(torch.cat([getattr(p, f) for p in parts], dim=d) for f, d in
                   (("adv", 0), ("fooled_on_path", 0), ("fooled", 0), ("trace", 1))))  # fmt: skip


def _probe_batch(
    model: nn.Module,
    judge: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    norm: str,
    steps: int,
    loss_name: str,
) -> Probe:
    """One batch. Where the judge is the model, the margin of each iterate comes from the
    forward pass its gradient takes (one forward and one backward per step)."""
    alpha = 2.5 * eps / steps
    adv = x.clone()
    best = torch.full((len(x),), float("inf"), device=x.device)
    fooled_on_path = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    kept = x.clone()  # per image: the first adversarial iterate, else the last
    trace = []

    def record(point: Tensor, now: Tensor) -> None:
        nonlocal best, fooled_on_path
        keep = ~fooled_on_path
        kept[keep] = point[keep]
        fooled_on_path = fooled_on_path | (now < 0)
        best = torch.minimum(best, now)
        trace.append(best.clone())

    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(adv)
            if loss_name == "ce":
                loss = -F.cross_entropy(logits, y, reduction="sum")
            else:
                loss = margin(logits, y).sum()
            (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            record(adv.detach(), margin(logits if judge is model else judge(adv), y))
        grad = torch.nan_to_num(grad)
        adv = project(adv.detach() - alpha * step_direction(grad, norm), x, eps, norm)
    with torch.no_grad():
        record(adv, margin(judge(adv), y))
        fooled = margin(judge(kept), y) < 0
    return Probe(kept, fooled_on_path, fooled, torch.stack(trace))


def incomplete(trace: Tensor, *, last: int = 10, threshold: float = 0.05) -> Tensor:
    """Per image: the best loss, rescaled to [0, 1] over its path, still fell by more than
    ``threshold`` over the ``last`` steps (Pintor et al.'s incomplete-optimization rule)."""
    low, high = trace.amin(0), trace.amax(0)
    span = (high - low).clamp_min(1e-12)
    scaled = (trace - low) / span
    tail = scaled[-min(last, len(scaled)) :]
    return (tail.amax(0) - tail.amin(0) > threshold) & (high > low)
