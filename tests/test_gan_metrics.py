"""GAN metrics beyond tests/test_gans.py: density, inception score, memorisation, Inception
FID, agreement with pytorch-fid, known cases through ``gan_metrics``, the class_means floor."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TinyCNN
from torch import Tensor, nn
from torchvision.models import inception_v3

import robustbench_gan.gans.baseline  # noqa: F401  (registers class_means)
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.errors import UserError
from robustbench_gan.gans import GAN, frechet_distance, gan_metrics, train_gan
from robustbench_gan.gans.inception import FEATURE_DIM, InceptionFeatures
from robustbench_gan.gans.metrics import (
    MEMORIZATION_KEYS,
    fid_of_features,
    gaussian_fit,
    inception_score,
    knn_radii,
    nearest_distances,
    precision_recall_coverage,
)
from robustbench_gan.models.base import Classifier
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import GENERATORS
from robustbench_gan.utils import predict

K = 10
SIDE = 4


def randn(*shape: int, seed: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- stubs: flat "level" images, a judge that reads the level, GANs that replay images ---


def level_images(labels: Tensor, *, seed: int, noise: float = 0.02) -> Tensor:
    """Flat SIDE x SIDE images of brightness label / (K - 1), plus a little pixel noise."""
    level = labels.float() / (K - 1)
    flat = level[:, None, None, None].expand(-1, 1, SIDE, SIDE)
    return (flat + noise * randn(len(labels), 1, SIDE, SIDE, seed=seed)).clamp(0, 1)


class ConfidentLevel(nn.Module):
    """Logits: minus a large multiple of the squared distance of the mean pixel to each level."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("levels", torch.linspace(0, 1, K))

    def forward(self, features: Tensor) -> Tensor:
        return -1e4 * (features.mean(1, keepdim=True) - self.levels) ** 2


class LevelJudge(Classifier):
    def __init__(self) -> None:
        super().__init__((1, SIDE, SIDE), K, mean=[0.0], std=[1.0])
        self.body, self.head, self.feature_dim = nn.Flatten(), ConfidentLevel(), SIDE * SIDE


class ReplayGAN(GAN):
    """Its samples for real images ``x`` are ``make(x)``: x itself, training images, ..."""

    def __init__(self, make: Callable[[Tensor], Tensor], shape: tuple[int, ...]) -> None:
        super().__init__(
            nn.Identity(), nn.Identity(), nz=1, num_classes=K, conditional=False, out_shape=shape
        )
        self.make = make

    def metric_samples(self, x: Tensor, y: Tensor | None, *, seed: int) -> tuple[Tensor, None]:
        return self.make(x), None


# -- density -------------------------------------------------------------------------


def test_density_follows_its_definition():
    real, fake = randn(40, 3, seed=0), randn(30, 3, seed=1) * 0.8
    k = 4
    radii = knn_radii(real.double(), k)
    inside = sum(
        float(torch.dist(f.double(), r.double()) < radius)
        for f in fake
        for r, radius in zip(real, radii)
    )
    density = precision_recall_coverage(real, fake, k=k)["density"]
    assert density == pytest.approx(inside / (k * len(fake)), rel=1e-12)


def test_density_is_about_one_on_the_real_distribution_and_rewards_dense_regions():
    real = randn(500, 4, seed=0)
    same = precision_recall_coverage(real, randn(500, 4, seed=1))["density"]
    dense = precision_recall_coverage(real, 0.5 * randn(500, 4, seed=1))["density"]
    assert 0.9 < same < 1.15
    assert dense > same + 0.1
    assert precision_recall_coverage(real, real.clone())["density"] == 1.0


# -- inception score -------------------------------------------------------------------


def confident_logits(labels: Tensor) -> Tensor:
    return 50.0 * nn.functional.one_hot(labels, K).double()


def test_inception_score_known_values():
    assert inception_score(torch.zeros(100, K)) == pytest.approx(1.0, abs=1e-12)
    balanced = confident_logits(torch.arange(100) % K)
    assert inception_score(balanced) == pytest.approx(K, rel=1e-9)
    assert inception_score(confident_logits(torch.zeros(100, dtype=torch.long))) == pytest.approx(
        1.0, abs=1e-9
    )
    assert inception_score(confident_logits(torch.arange(100) % 2)) == pytest.approx(2, rel=1e-9)
    # sample order does not matter; less confident predictions score lower
    shuffled = balanced[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    assert inception_score(shuffled) == pytest.approx(K, rel=1e-9)
    assert 1 < inception_score(balanced / 20) < K


# -- Frechet distance -------------------------------------------------------------------


def random_gaussian(d: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return rng.normal(size=d) + shift, a @ a.T / d + 0.1 * np.eye(d)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")
@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_agrees_with_pytorch_fid(d):
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    mu1, s1 = random_gaussian(d, seed=d, shift=0.0)
    mu2, s2 = random_gaussian(d, seed=d + 1, shift=0.5)
    for stats in [(mu1, s1, mu2, s2), (mu1, s1, mu1 + 0.1, 2 * s1), (mu2, s2, mu1, s1)]:
        try:
            reference = fid_score.calculate_frechet_distance(*stats)
        except TypeError as exc:  # pytorch-fid passes sqrtm's `disp`, gone from newer SciPy
            pytest.skip(f"pytorch-fid does not run with this SciPy: {exc}")
        assert frechet_distance(*stats) == pytest.approx(reference, rel=1e-3)


@pytest.mark.parametrize("n, d", [(6, 256), (20, 100), (60, 16)])
def test_fid_of_features_is_exact_in_the_sample_span(n, d):
    real = randn(n, d, seed=0) @ randn(d, d, seed=1) / d**0.5
    fake = randn(n, d, seed=2) @ randn(d, d, seed=3) / d**0.5 + 0.3
    mu1, s1 = gaussian_fit(real.double().numpy())
    mu2, s2 = gaussian_fit(fake.double().numpy())
    # exact trace term: tr (s1 s2)^(1/2) = sum of sqrt(eig(s1^(1/2) s2 s1^(1/2)))
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w.clip(0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root @ s2 @ root).clip(0)).sum()
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross
    assert fid_of_features(real, fake) == pytest.approx(exact, rel=1e-6)
    if n * 2 > d:  # no projection: exactly frechet_distance
        assert fid_of_features(real, fake) == frechet_distance(mu1, s1, mu2, s2)


# -- memorisation ----------------------------------------------------------------------


def test_nearest_distances_in_blocks():
    x, reference = torch.rand(50, 1, 4, 4), torch.rand(70, 1, 4, 4)
    expected = torch.cdist(x.flatten(1).double(), reference.flatten(1).double()).min(1).values
    blocked = nearest_distances(x, reference, batch_size=7, reference_batch_size=11)
    assert blocked.shape == (50,)
    assert torch.allclose(blocked.double(), expected, atol=1e-5)
    assert nearest_distances(reference[:5], reference).abs().max() < 1e-3
    with pytest.raises(ValueError):
        nearest_distances(x, torch.rand(3, 1, 2, 8))


def test_memorization_flags_copies_of_training_images():
    labels = torch.arange(1200) % K
    x_train = level_images(labels[:1000], seed=0, noise=0.1)
    x_test, y_test = level_images(labels[1000:], seed=1, noise=0.1), labels[1000:]
    judge = LevelJudge()
    copier = ReplayGAN(lambda x: x_train[: len(x)], x_train.shape[1:])
    fresh = ReplayGAN(lambda x: level_images(labels[: len(x)], seed=2, noise=0.1), (1, 4, 4))
    copies = gan_metrics(copier, judge, x_test, y_test, n=200, x_train=x_train)
    new = gan_metrics(fresh, judge, x_test, y_test, n=200, x_train=x_train)
    assert copies["nn_train_dist_fake"] < 1e-3 and copies["memorization_ratio"] < 0.01
    assert new["memorization_ratio"] == pytest.approx(1.0, abs=0.1)
    assert copies["nn_train_dist_test"] == new["nn_train_dist_test"] > 0
    without = gan_metrics(fresh, judge, x_test, y_test, n=200)
    assert all(math.isnan(without[key]) for key in MEMORIZATION_KEYS)
    assert "fid_inception" not in without


# -- known cases through gan_metrics ---------------------------------------------------


def test_identical_sets_score_perfectly():
    labels = torch.arange(200) % K
    x = level_images(labels, seed=0)
    m = gan_metrics(ReplayGAN(lambda real: real.clone(), (1, 4, 4)), LevelJudge(), x, labels)
    assert m["fid"] == pytest.approx(0.0, abs=1e-6)
    assert m["precision"] == m["recall"] == m["coverage"] == m["density"] == 1.0
    assert m["inception_score"] == pytest.approx(K, rel=1e-6)
    assert m["class_coverage"] == 1.0 and m["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(m["label_fidelity"])  # unconditional


def test_collapse_onto_one_class():
    labels = torch.arange(200) % K
    x = level_images(labels, seed=0)
    ones = level_images(torch.zeros(200, dtype=torch.long), seed=1)
    m = gan_metrics(ReplayGAN(lambda real: ones[: len(real)], (1, 4, 4)), LevelJudge(), x, labels)
    assert m["class_coverage"] == pytest.approx(1 / K)
    assert m["class_kl"] == pytest.approx(math.log(K))
    assert m["inception_score"] == pytest.approx(1.0, abs=1e-6)
    assert m["recall"] < 0.2 and m["coverage"] < 0.2


# -- Inception features and FID ----------------------------------------------------------


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """A randomly initialised inception_v3 whose batch-norm statistics come from one batch of
    noise (so its features stay in a sane range), saved as a state dict."""
    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=True)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 1.0
    with torch.no_grad():
        net.train()(torch.rand(4, 3, 299, 299))
    path = tmp_path_factory.mktemp("inception") / "inception_v3.pt"
    torch.save(net.state_dict(), path)
    return path


def test_inception_weights_errors(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(UserError, match="nowhere.pt"):
        InceptionFeatures(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="garbage.pt"):
        InceptionFeatures(garbage)
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(2, 2).state_dict(), other)
    with pytest.raises(UserError, match="inception_v3"):
        InceptionFeatures(other)


def test_inception_features(inception_weights):
    extract = InceptionFeatures(inception_weights, batch_size=2)
    x = torch.rand(3, 1, 8, 8)
    prepared = extract.prepare(torch.full((1, 1, 8, 8), 0.5))
    assert prepared.shape == (1, 3, 299, 299)
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(prepared[0, :, 100, 200], expected)
    features = extract(x)
    assert features.shape == (3, FEATURE_DIM) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.std() > 0
    assert not extract.net.training
    extract.batch_size = 64
    assert torch.allclose(extract(x.repeat(1, 3, 1, 1)), features, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        extract(torch.rand(2, 2, 8, 8))


def test_gan_metrics_inception_fid(inception_weights):
    extract = InceptionFeatures(inception_weights)
    labels = torch.arange(6) % K
    x = level_images(labels, seed=0, noise=0.2)
    same = ReplayGAN(lambda real: real.clone(), (1, 4, 4))
    other = ReplayGAN(lambda real: torch.rand(real.shape), (1, 4, 4))
    identical = gan_metrics(same, LevelJudge(), x, labels, n=6, inception=extract)
    different = gan_metrics(other, LevelJudge(), x, labels, n=6, inception=extract)
    assert different["fid_inception"] > 0
    assert identical["fid_inception"] == pytest.approx(0.0, abs=1e-6 * different["fid_inception"])


# -- the class_means baseline ---------------------------------------------------------


def patterned_data(n: int = 400, classes: int = 3) -> tuple[Tensor, Tensor]:
    """Each class: a fixed pattern in [0.3, 0.7] plus pixel noise of std 0.05."""
    y = torch.arange(n) % classes
    patterns = 0.3 + 0.4 * torch.rand(classes, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    return patterns[y] + 0.05 * randn(n, 1, 6, 6, seed=1), y


def test_class_means_fits_and_samples_around_the_class_means():
    x, y = patterned_data()
    gan = GENERATORS.create("class_means", in_shape=(1, 6, 6), num_classes=3)
    assert (gan.nz, gan.conditional) == (36, True)
    history = train_gan(gan, x, y, seed=0, progress=False)
    assert (history.steps, history.d_loss, history.g_loss, history.options) == (0, [], [], {})
    for c in range(3):
        assert torch.allclose(gan.means[c], x[y == c].mean(0))
    assert float(gan.sigma) == pytest.approx(0.05, rel=0.1)
    labels = torch.arange(3).repeat_interleave(500)
    samples = gan.sample(len(labels), labels=labels, seed=0)
    assert 0 <= samples.min() and samples.max() <= 1
    for c in range(3):
        drawn = samples[labels == c]
        assert (drawn.mean(0) - gan.means[c]).abs().max() < 0.02
        assert drawn.std(0).mean() == pytest.approx(float(gan.sigma), rel=0.05)
    clone = GENERATORS.create("class_means", **gan.config)
    clone.load_state_dict(gan.state_dict())
    assert torch.equal(clone.sample(9, seed=4), gan.sample(9, seed=4))
    assert not torch.equal(gan.sample(9, seed=4), gan.sample(9, seed=5))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_class_means_shapes(shape):
    x, y = torch.rand(20, *shape), torch.arange(20) % 10
    gan = GENERATORS.create("class_means", in_shape=shape)
    train_gan(gan, x, y, seed=0, progress=False)
    images, per_row = gan.grid_images(None, per_class=2, n=4, seed=0)
    assert images.shape == (20, *shape) and per_row == 2


def test_class_means_needs_every_class():
    x, y = patterned_data(classes=2)
    gan = GENERATORS.create("class_means", in_shape=(1, 6, 6), num_classes=3)
    with pytest.raises(UserError, match=r"\[2\]"):
        train_gan(gan, x, y, seed=0, progress=False)


def test_class_means_on_digits_against_a_real_judge(digits):
    torch.manual_seed(0)
    judge = TinyCNN(mean=float(digits.x_train.mean()), std=float(digits.x_train.std()))
    config = TrainConfig(epochs=6, batch_size=64, lr=1e-2)
    train_classifier(judge, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    assert (predict(judge, digits.x_test) == digits.y_test).float().mean() > 0.9
    gan = GENERATORS.create("class_means", in_shape=digits.shape)
    train_gan(gan, digits.x_train, digits.y_train, seed=0, progress=False)
    m = gan_metrics(gan, judge, digits.x_test, digits.y_test, n=300, x_train=digits.x_train)
    assert all(math.isfinite(v) for v in m.values())
    assert m["label_fidelity"] > 0.8 and m["class_coverage"] == 1.0
    assert m["memorization_ratio"] > 1  # blurred means plus noise copy nothing


def test_a_suite_with_local_inception_weights_reports_inception_fid(inception_weights, tmp_path):
    """Through the runner: ``[gan_metrics] inception_weights`` adds ``fid_inception`` to every
    generator's row (the baseline's too), next to the judge's FID."""
    import shutil

    from robustbench_gan.runner.run import run_suite

    shutil.copy(inception_weights, tmp_path / "inception.pt")
    (tmp_path / "suite.toml").write_text(
        """
name = "inception"
[dataset]
name = "digits"
max_train = 100
max_test = 12
[train]
epochs = 1
[eval]
eps = [0]
[[targets]]
name = "mlp"
hidden = 8
[[generators]]
name = "cdcgan"
ngf = 4
ndf = 4
nz = 4
train = { steps = 2, batch_size = 8 }
[gan_metrics]
n = 12
inception_weights = "inception.pt"
[[attacks]]
name = "fgsm"
"""
    )
    out = tmp_path / "out"
    run_suite(tmp_path / "suite.toml", out=out, cache_dir=tmp_path / "cache", progress=False)
    gan = pd.read_csv(out / "gan.csv")
    assert list(gan["generator"]) == ["cdcgan", "baseline"]
    assert gan["fid_inception"].map(np.isfinite).all() and (gan["fid_inception"] >= 0).all()
