"""Generator quality on the features of a judge classifier trained by the suite.

- FID: Frechet distance between Gaussians fitted to real and generated features
  (Heusel et al. 2017), here on the judge's penultimate layer, not Inception's;
- fid_inception (only with local Inception-v3 weights, ``gans.inception``): the same on
  Inception's 2048-d pool features;
- inception_score: exp(E_x KL(p(y|x) || p(y))) of the judge's softmax on the generated
  samples (Salimans et al. 2016, with the judge in place of Inception, one split);
- precision and recall: Kynkaenniemi et al. 2019, k-NN balls around real / fake features;
- density and coverage: Naeem et al. 2020; density counts the real k-NN balls around
  each fake sample (about 1 when fakes follow the real distribution), coverage is the
  share of real k-NN balls that hold a fake sample;
- class_coverage: share of classes the judge predicts for at least half of 1/K of
  the generated samples; class_kl: KL(predicted class frequencies || uniform), nats;
- label_fidelity: share of samples generated with label c that the judge calls c
  (conditional GANs; NaN otherwise);
- memorisation: median pixel L2 distance from each generated image, and from each real
  test image, to its nearest training image, and their ratio (well below 1: copies).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

from ..models.base import Classifier
from ..utils import batch_slices, torch_generator
from .base import GAN

if TYPE_CHECKING:
    from .inception import InceptionFeatures

SQRTM_EPS = 1e-6
MEMORIZATION_KEYS = ("nn_train_dist_fake", "nn_train_dist_test", "memorization_ratio")


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


def precision_recall_coverage(real: Tensor, fake: Tensor, *, k: int = 5) -> dict[str, float]:
    """Improved precision/recall (Kynkaenniemi et al. 2019), density and coverage (Naeem
    et al. 2020).

    Density is ``(1 / (k M)) sum_j #{i : fake_j in B(real_i, r_i)}`` over the M fakes, with
    open balls as in Naeem et al.'s reference code, so an exact copy of the real set scores 1
    (a closed ball would also count its k-th neighbour: (k + 1) / k).
    """
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    fake_to_real, real_to_fake = torch.cdist(fake, real), torch.cdist(real, fake)
    # precision: fake j lies in some real ball; recall: real i lies in some fake ball
    precision = fake_to_real.le(real_radii[None, :]).any(dim=1).double().mean()
    recall = real_to_fake.le(fake_radii[None, :]).any(dim=1).double().mean()
    # density: sum over real balls of the fakes strictly inside, per fake and per k; read off
    # real_to_fake, whose rows match knn_radii's bit for bit when the sets are equal
    density = real_to_fake.lt(real_radii[:, None]).sum().double() / (k * len(fake))
    # coverage: real ball i holds at least one fake sample
    coverage = (real_to_fake.min(dim=1).values <= real_radii).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def class_balance(predictions: Tensor, num_classes: int) -> dict[str, float]:
    """``class_coverage`` and ``class_kl`` of predicted labels against a uniform target."""
    share = torch.bincount(predictions, minlength=num_classes).double() / max(len(predictions), 1)
    nonzero = share[share > 0]
    kl = float((nonzero * torch.log(nonzero * num_classes)).sum())
    covered = float((share >= 0.5 / num_classes).double().mean())
    return {"class_coverage": covered, "class_kl": kl}


def inception_score(logits: Tensor) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` from class logits (one row per sample, one split):
    1 when every sample gets the same prediction, K for confident predictions spread
    evenly over K classes."""
    p = torch.softmax(logits.double(), dim=1)
    marginal = p.mean(dim=0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, marginal)).sum(dim=1)
    return float(kl.mean().exp())


def nearest_distances(
    x: Tensor,
    reference: Tensor,
    *,
    batch_size: int = 1024,
    reference_batch_size: int = 8192,
    device: str | torch.device = "cpu",
) -> Tensor:
    """L2 distance from each image of ``x`` to its nearest image of ``reference`` (flattened,
    float32, on the CPU), in blocks so that only ``batch_size x reference_batch_size``
    distances exist at a time."""
    if x.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"images of shape {tuple(x.shape[1:])} vs reference {tuple(reference.shape[1:])}"
        )
    if len(reference) == 0:
        raise ValueError("the reference set is empty")
    out = []
    for s in batch_slices(len(x), batch_size):
        queries = x[s].flatten(1).float().to(device)
        best = torch.full((len(queries),), math.inf, device=device)
        for r in batch_slices(len(reference), reference_batch_size):
            block = reference[r].flatten(1).float().to(device)
            best = torch.minimum(best, torch.cdist(queries, block).min(dim=1).values)
        out.append(best.cpu())
    return torch.cat(out) if out else torch.empty(0)


def memorization(
    fake: Tensor, test: Tensor, x_train: Tensor, *, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Median distances of generated and of real test images to their nearest training
    image, and their ratio (fake / test; NaN if the test median is 0)."""
    d_fake = float(np.median(nearest_distances(fake, x_train, device=device).numpy()))
    d_test = float(np.median(nearest_distances(test, x_train, device=device).numpy()))
    return {
        "nn_train_dist_fake": d_fake,
        "nn_train_dist_test": d_test,
        "memorization_ratio": d_fake / d_test if d_test > 0 else math.nan,
    }


def fid_of_features(real: Tensor, fake: Tensor) -> float:
    """``frechet_distance`` between Gaussians fitted to two feature sets.

    With fewer samples than dimensions (Inception's 2048 features) both Gaussians live in
    the span of the centred samples, so the features are first rotated onto an orthonormal
    basis of that span: the Frechet distance is invariant to rotations and translations,
    and the matrix square root then costs ``(2n)^3`` instead of ``2048^3``.
    """
    real, fake = real.double(), fake.double()
    both = torch.cat([real, fake])
    if len(both) < both.shape[1]:
        centre = both.mean(dim=0)
        basis, _ = torch.linalg.qr((both - centre).T)  # d x 2n, orthonormal columns
        real, fake = (real - centre) @ basis, (fake - centre) @ basis
    return frechet_distance(*gaussian_fit(real.numpy()), *gaussian_fit(fake.numpy()))


@torch.no_grad()
def _judge_outputs(
    judge: Classifier, x: Tensor, device: torch.device | str
) -> tuple[Tensor, Tensor]:
    """The judge's features and logits for ``x``, on the CPU."""
    feats, logits = [], []
    for s in batch_slices(len(x), 512):
        f = judge.features(x[s].to(device))
        feats.append(f.flatten(1).cpu())
        logits.append(judge.head(f).cpu())
    return torch.cat(feats), torch.cat(logits)


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
    x_train: Tensor | None = None,
    inception: InceptionFeatures | None = None,
    domain: str | None = None,
) -> dict[str, float]:
    """FID, inception score, precision, recall, density, coverage, class_coverage,
    class_kl, label_fidelity and the memorisation distances (see the module docstring).

    Uses ``min(n, len(x_real))`` real images (a seeded random subset) and as many
    generated ones (seeded). A conditional GAN is sampled with the labels of the
    chosen real images, so both sets share class frequencies (a balanced cycle
    when ``y_real`` is None). Both models are moved to ``device``; their
    train/eval modes are restored. The memorisation keys need the training images
    ``x_train`` (NaN without); ``fid_inception`` is there only when ``inception`` is given.
    ``domain`` asks a translator of several domains for the samples of that one domain
    (``GAN.metric_samples(..., domain=...)``).
    """
    n = min(n, len(x_real))
    if n <= k:
        raise ValueError(f"need more than k={k} samples, got {n}")
    gan.to(device)
    judge.to(device)
    idx = torch.randperm(len(x_real), generator=torch_generator(seed))[:n]
    real = x_real[idx]
    which = {} if domain is None else {"domain": domain}
    fake, labels = gan.metric_samples(
        real, None if y_real is None else y_real[idx], seed=seed, **which
    )

    was_training = judge.training
    judge.eval()
    try:
        real_feats, _ = _judge_outputs(judge, real, device)
        fake_feats, fake_logits = _judge_outputs(judge, fake, device)
    finally:
        judge.train(was_training)
    fake_preds = fake_logits.argmax(1)

    result = {
        "fid": frechet_distance(
            *gaussian_fit(real_feats.numpy()), *gaussian_fit(fake_feats.numpy())
        )
    }
    if inception is not None:
        result["fid_inception"] = fid_of_features(inception(real), inception(fake))
    result["inception_score"] = inception_score(fake_logits)
    result.update(precision_recall_coverage(real_feats, fake_feats, k=k))
    result.update(class_balance(fake_preds, judge.num_classes))
    result["label_fidelity"] = (
        float((fake_preds == labels).double().mean()) if labels is not None else math.nan
    )
    if x_train is not None:
        result.update(memorization(fake, real, x_train, device=device))
    else:
        result.update(dict.fromkeys(MEMORIZATION_KEYS, math.nan))
    return result
