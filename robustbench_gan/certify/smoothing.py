"""Randomized smoothing: Cohen et al.'s PREDICT and CERTIFY, and certified accuracy by radius.

Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing", ICML
2019, https://arxiv.org/abs/1902.02918. A base classifier ``f`` is smoothed by Gaussian noise:
``g(x) = argmax_c P(f(x + d) = c)``, ``d ~ N(0, sigma^2 I)``. If the top class has probability
at least ``pA_lower > 1/2``, ``g`` is constant on the L2 ball of radius
``sigma * Phi^-1(pA_lower)`` around ``x`` (their Theorem 1, with ``pB <= 1 - pA``).

* :func:`predict` (PREDICT): ``n`` noisy copies of each image; with ``nA``, ``nB`` the top two
  class counts, the top class if the two-sided binomial test of ``nA`` out of ``nA + nB`` at
  1/2 gives a p-value of at most ``alpha``, else abstain (-1). It returns a class other than
  ``g(x)`` with probability at most ``alpha`` (their Theorem 2).
* :func:`certify` (CERTIFY): ``n0`` copies choose the class (the most frequent), ``n`` fresh
  copies count it; ``pA_lower`` is the one-sided (1 - alpha) Clopper-Pearson lower bound of
  ``nA / n``; abstain when ``pA_lower < 1/2``, else certify the radius above. A certificate is
  wrong with probability at most ``alpha``.

As in the paper's code (and ART's), the noise is not clipped to [0, 1]: the base classifier
sees ``x + d`` as is, which is also what ``gaussian_augment`` trains on. Every draw comes from
a private stream seeded with ``seed`` (:func:`~robustbench_gan.utils.torch_generator`), never
the global one: the same model, images, arguments and device give the same outputs. The copies
of several images go through the model together, ``batch_size`` rows a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import beta, binomtest, norm
from torch import Tensor, nn

from ..bounds import Count, Fraction, Positive, Seed, checked
from ..utils import batch_slices, eval_mode, labels_of, model_device, torch_generator, wilson

#: the label of an abstention
ABSTAIN = -1


@dataclass(frozen=True)
class Prediction:
    """PREDICT's outcome per image: the label (-1: abstained), the class counts of the ``n``
    noisy copies (N x classes) and the binomial test's p-value."""

    label: Tensor
    counts: Tensor
    p_value: Tensor


@dataclass(frozen=True)
class Certificate:
    """CERTIFY's outcome per image: the label (-1: abstained), the certified L2 radius (0 where
    abstained), ``pA_lower``, and the class counts of the ``n`` estimation copies (``counts``)
    and of the ``n0`` selection copies (``selection``), N x classes each."""

    label: Tensor
    radius: Tensor
    p_lower: Tensor
    counts: Tensor
    selection: Tensor


@dataclass(frozen=True)
class CertifiedAccuracy:
    """At one radius: the images classified correctly with a certified radius of at least it,
    their share and its Wilson 95% interval."""

    radius: float
    correct: int
    total: int
    accuracy: float
    low: float
    high: float


def lower_confidence_bound(count: Tensor | np.ndarray, n: int, alpha: float) -> np.ndarray:
    """The one-sided (1 - alpha) Clopper-Pearson lower bound of a proportion ``count / n``:
    the alpha quantile of Beta(count, n - count + 1), 0 where ``count`` is 0 (``n / n`` gives
    ``alpha ** (1 / n)``)."""
    k = np.asarray(count, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, bound, 0.0)


def radius_of(p_lower: Tensor | np.ndarray, sigma: float) -> np.ndarray:
    """``sigma * Phi^-1(p_lower)``, the radius Theorem 1 certifies, 0 below 1/2."""
    p = np.asarray(p_lower, dtype=np.float64)
    return np.where(p >= 0.5, sigma * norm.ppf(np.clip(p, 0.5, 1.0)), 0.0)


@torch.no_grad()
def noisy_counts(
    model: nn.Module,
    x: Tensor,
    *,
    sigma: float,
    n: int,
    batch_size: int,
    generator: torch.Generator,
) -> Tensor:
    """The base classifier's class counts on ``n`` noisy copies of each image (N x classes,
    on the CPU): the copies of all images in order, ``batch_size`` rows a pass, the noise
    drawn from ``generator`` (on the model's device)."""
    device = model_device(model)
    x = x.to(device)
    width = getattr(model, "num_classes", None)
    counts = torch.zeros(len(x), width if isinstance(width, int) else 1, dtype=torch.long)
    with eval_mode(model):
        for rows in batch_slices(len(x) * n, batch_size):
            image = torch.arange(rows.start, rows.stop, device=device) // n
            copies = x[image]
            noise = torch.randn(copies.shape, generator=generator, device=device, dtype=x.dtype)
            label = labels_of(model, copies + sigma * noise).cpu()
            if len(label) and int(label.max()) >= counts.shape[1]:
                counts = F.pad(counts, (0, int(label.max()) + 1 - counts.shape[1]))
            counts.index_put_((image.cpu(), label), torch.ones_like(label), accumulate=True)
    return counts


def _same_width(*counts: Tensor) -> list[Tensor]:
    """The count tables padded with zero columns to one width, of at least 2 classes."""
    width = max(2, *(c.shape[1] for c in counts))
    return [F.pad(c, (0, width - c.shape[1])) for c in counts]


@checked
def predict(
    model: nn.Module,
    x: Tensor,
    *,
    sigma: Positive,
    n: Count,
    alpha: Fraction = 0.001,
    batch_size: Count = 256,
    seed: Seed = 0,
) -> Prediction:
    """Cohen et al.'s PREDICT on each image of ``x`` (N x C x H x W in [0, 1])."""
    generator = torch_generator(seed, model_device(model))
    counts = noisy_counts(model, x, sigma=sigma, n=n, batch_size=batch_size, generator=generator)
    (counts,) = _same_width(counts)
    top, index = counts.topk(2, dim=1)
    p_value = torch.tensor(
        [binomtest(int(a), int(a + b), 0.5).pvalue for a, b in top.tolist()], dtype=torch.float64
    )
    label = torch.where(p_value <= alpha, index[:, 0], torch.full_like(index[:, 0], ABSTAIN))
    return Prediction(label=label, counts=counts, p_value=p_value)


@checked
def certify(
    model: nn.Module,
    x: Tensor,
    *,
    sigma: Positive,
    n0: Count,
    n: Count,
    alpha: Fraction = 0.001,
    batch_size: Count = 256,
    seed: Seed = 0,
) -> Certificate:
    """Cohen et al.'s CERTIFY on each image of ``x`` (N x C x H x W in [0, 1]): the selection
    copies of every image are drawn first, then the estimation copies, from one stream."""
    generator = torch_generator(seed, model_device(model))
    draw = dict(sigma=sigma, batch_size=batch_size, generator=generator)
    selection = noisy_counts(model, x, n=n0, **draw)
    counts = noisy_counts(model, x, n=n, **draw)
    selection, counts = _same_width(selection, counts)
    chosen = selection.argmax(dim=1)  # the first of tied classes, as numpy's argmax
    count = counts.gather(1, chosen[:, None])[:, 0]
    p_lower = lower_confidence_bound(count.numpy(), n, alpha)
    certified = torch.from_numpy(p_lower >= 0.5)
    return Certificate(
        label=torch.where(certified, chosen, torch.full_like(chosen, ABSTAIN)),
        radius=torch.from_numpy(radius_of(p_lower, sigma)),
        p_lower=torch.from_numpy(p_lower),
        counts=counts,
        selection=selection,
    )


def certified_accuracy(
    pred: Tensor, radius: Tensor, y: Tensor, radii: Iterable[float]
) -> list[CertifiedAccuracy]:
    """Per radius ``r``: the share of images whose certified label is ``y`` with a radius of
    at least ``r`` (an abstention is never correct), with its Wilson 95% interval."""
    pred, radius, y = (torch.as_tensor(t).cpu() for t in (pred, radius, y))
    if not len(pred) == len(radius) == len(y):
        raise ValueError(
            f"pred, radius and y differ in length: {len(pred)}, {len(radius)}, {len(y)}"
        )
    right = pred == y
    rows = []
    for r in radii:
        correct, total = int((right & (radius >= r)).sum()), len(y)
        low, high = wilson(correct, total)
        share = correct / total if total else float("nan")
        rows.append(CertifiedAccuracy(float(r), correct, total, share, low, high))
    return rows
