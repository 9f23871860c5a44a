"""Generator quality on the features of a judge classifier trained by the suite.

- FID: Frechet distance between Gaussians fitted to real and generated features
  (Heusel et al. 2017), here on the judge's penultimate layer, not Inception's;
- precision and recall: Kynkaenniemi et al. 2019, k-NN balls around real / fake features;
- coverage: Naeem et al. 2020, the share of real k-NN balls that hold a fake sample;
- class_coverage: share of classes the judge predicts for at least half of 1/K of
  the generated samples; class_kl: KL(predicted class frequencies || uniform), nats;
- label_fidelity: share of samples generated with label c that the judge calls c
  (conditional GANs; NaN otherwise).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

from ..models.base import Classifier
from ..utils import batch_slices, torch_generator
from .base import GAN

SQRTM_EPS = 1e-6


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(s1 + s2 - 2 (s1 s2)^(1/2))`` for two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError("means and covariances must have matching shapes")
    covmean = _sqrtm_or_none(s1 @ s2)
    if covmean is None:
        # Singular covariances (dead features, fewer samples than dimensions):
        # regularize both sides by a tiny multiple of the identity.
        offset = np.eye(len(mu1)) * SQRTM_EPS * max(np.trace(s1), np.trace(s2), 1.0) / len(mu1)
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    # (s1 s2)^(1/2) has a real spectrum for PSD inputs; imaginary parts are round-off.
    covmean = np.real(covmean)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm_or_none(a: np.ndarray) -> np.ndarray | None:
    """``sqrtm(a)``, or None when SciPy finds ``a`` singular or the result is not finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            root = linalg.sqrtm(a)
        except linalg.LinAlgWarning:
            return None
    return root if np.isfinite(root).all() else None


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of row vectors."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.atleast_2d(np.cov(features, rowvar=False))


def knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each row to its k-th nearest other row."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} samples, got {len(features)}")
    dists = torch.cdist(features, features)
    return dists.kthvalue(k + 1, dim=1).values  # k + 1: the row itself is at distance 0


def _inside_any_ball(points: Tensor, centers: Tensor, radii: Tensor) -> Tensor:
    """For each point: is it within ``radii[j]`` of some ``centers[j]``?"""
    return torch.cdist(points, centers).le(radii[None, :]).any(dim=1)


def precision_recall_coverage(real: Tensor, fake: Tensor, *, k: int = 5) -> dict[str, float]:
    """Improved precision/recall (Kynkaenniemi et al. 2019) and coverage (Naeem et al. 2020)."""
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    precision = _inside_any_ball(fake, real, real_radii).double().mean()
    recall = _inside_any_ball(real, fake, fake_radii).double().mean()
    # coverage: real ball i holds at least one fake sample
    coverage = (torch.cdist(real, fake).min(dim=1).values <= real_radii).double().mean()
    return {"precision": float(precision), "recall": float(recall), "coverage": float(coverage)}


def class_balance(predictions: Tensor, num_classes: int) -> dict[str, float]:
    """``class_coverage`` and ``class_kl`` of predicted labels against a uniform target."""
    share = torch.bincount(predictions, minlength=num_classes).double() / max(len(predictions), 1)
    nonzero = share[share > 0]
    kl = float((nonzero * torch.log(nonzero * num_classes)).sum())
    covered = float((share >= 0.5 / num_classes).double().mean())
    return {"class_coverage": covered, "class_kl": kl}


@torch.no_grad()
def _judge_outputs(
    judge: Classifier, x: Tensor, device: torch.device | str
) -> tuple[Tensor, Tensor]:
    feats, preds = [], []
    for s in batch_slices(len(x), 512):
        f = judge.features(x[s].to(device))
        feats.append(f.flatten(1).cpu())
        preds.append(judge.head(f).argmax(1).cpu())
    return torch.cat(feats), torch.cat(preds)


def gan_metrics(
    gan: GAN,
    judge: Classifier,
    x_real: Tensor,
    y_real: Tensor | None = None,
    *,
    n: int = 1000,
    k: int = 5,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """FID, precision, recall, coverage, class_coverage, class_kl and label_fidelity.

    Uses ``min(n, len(x_real))`` real images (a seeded random subset) and as many
    generated ones (seeded). A conditional GAN is sampled with the labels of the
    chosen real images, so both sets share class frequencies (a balanced cycle
    when ``y_real`` is None). Both models are moved to ``device``; their
    train/eval modes are restored.
    """
    n = min(n, len(x_real))
    if n <= k:
        raise ValueError(f"need more than k={k} samples, got {n}")
    gan.to(device)
    judge.to(device)
    idx = torch.randperm(len(x_real), generator=torch_generator(seed))[:n]
    labels = None
    if gan.conditional:
        labels = gan.default_labels(n) if y_real is None else y_real[idx].long().cpu()
    fake = gan.sample(n, labels=labels, seed=seed)

    was_training = judge.training
    judge.eval()
    try:
        real_feats, _ = _judge_outputs(judge, x_real[idx], device)
        fake_feats, fake_preds = _judge_outputs(judge, fake, device)
    finally:
        judge.train(was_training)

    fid = frechet_distance(*gaussian_fit(real_feats.numpy()), *gaussian_fit(fake_feats.numpy()))
    fidelity = float((fake_preds == labels).double().mean()) if labels is not None else math.nan
    return {
        "fid": fid,
        **precision_recall_coverage(real_feats, fake_feats, k=k),
        **class_balance(fake_preds, judge.num_classes),
        "label_fidelity": fidelity,
    }
