"""GANs: DCGAN architecture rules, sampling, the training loop, metrics and grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib import image as mpimg
from sklearn.datasets import load_digits
from torch import Tensor, nn
from torch.nn import functional as F

from robustbench_gan.errors import UserError
from robustbench_gan.gans import GAN, frechet_distance, gan_metrics, save_sample_grid, train_gan
from robustbench_gan.gans.dcgan import stage_plan
from robustbench_gan.gans.metrics import class_balance, precision_recall_coverage
from robustbench_gan.models.base import Classifier
from robustbench_gan.registry import GENERATORS
from robustbench_gan.utils import predict

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
FAMILIES = ["dcgan", "cdcgan"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets run far faster on one thread than on two contending ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_gan(family: str, shape=(1, 8, 8), seed: int = 0, **kwargs) -> GAN:
    torch.manual_seed(seed)
    return GENERATORS.create(family, in_shape=shape, **kwargs)


def labels_for(gan: GAN, n: int) -> Tensor | None:
    return torch.arange(n) % gan.num_classes if gan.conditional else None


# -- architecture -------------------------------------------------------------


@pytest.mark.parametrize("side, k, s0", [(8, 1, 4), (28, 2, 7), (32, 3, 4), (64, 4, 4), (12, 1, 6)])
def test_stage_plan(side, k, s0):
    assert stage_plan(side) == (k, s0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dcgan_rules(family, shape):
    gan = make_gan(family, shape, nz=16, ngf=8, ndf=8)
    k, s0 = stage_plan(shape[1])
    extra = gan.num_classes if gan.conditional else 0
    g_layers, d_layers = list(gan.generator.modules()), list(gan.discriminator.modules())
    banned = (nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    assert not any(isinstance(m, banned) for m in g_layers + d_layers)

    g_seq, d_seq = list(gan.generator.net), list(gan.discriminator.net)
    g_convs = [m for m in g_seq if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    d_convs = [m for m in d_seq if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(isinstance(m, nn.ConvTranspose2d) for m in g_convs)
    assert all(type(m) is nn.Conv2d for m in d_convs)
    assert len(g_convs) == len(d_convs) == k + 1
    # G: 1x1 latent -> s0 x s0, then stride-2 upsampling; D mirrors it down to a 1x1 logit.
    first = g_convs[0]
    assert (first.in_channels, first.kernel_size, first.stride) == (16 + extra, (s0, s0), (1, 1))
    assert d_convs[0].in_channels == shape[0] + extra
    assert (d_convs[-1].out_channels, d_convs[-1].kernel_size) == (1, (s0, s0))
    for conv in g_convs[1:] + d_convs[:-1]:
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    assert g_convs[-1].out_channels == shape[0]
    # widths halve going up G and double going down D
    assert [c.out_channels for c in g_convs[:-1]] == [8 * 2**i for i in reversed(range(k))]
    assert [c.out_channels for c in d_convs[:-1]] == [8 * 2**i for i in range(k)]

    def followed_by_bn(seq, conv):
        i = seq.index(conv)
        return i + 1 < len(seq) and isinstance(seq[i + 1], nn.BatchNorm2d)

    assert [followed_by_bn(g_seq, c) for c in g_convs] == [True] * k + [False]
    assert [followed_by_bn(d_seq, c) for c in d_convs] == [False] + [True] * (k - 1) + [False]
    g_acts = [m for m in g_seq if not isinstance(m, nn.ConvTranspose2d | nn.BatchNorm2d)]
    assert all(isinstance(m, nn.ReLU) for m in g_acts[:-1]) and isinstance(g_seq[-1], nn.Tanh)
    d_acts = [m for m in d_seq if not isinstance(m, nn.Conv2d | nn.BatchNorm2d)]
    assert d_acts and all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in d_acts)

    n = 3
    z = torch.randn(n, gan.nz)
    images = gan.generator(z, labels_for(gan, n))
    assert images.shape == (n, *shape)
    assert gan.discriminator(images, labels_for(gan, n)).shape == (n,)


def test_dcgan_init_and_defaults():
    gan = make_gan("dcgan", (3, 32, 32))
    assert (gan.nz, gan.num_classes, gan.conditional) == (100, 10, False)
    assert gan.out_shape == (3, 32, 32)
    convs = [m for m in gan.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.001
    bn = torch.cat([m.weight for m in gan.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.01 and abs(bn.std().item() - 0.02) < 0.005
    assert all(m.bias is None or not m.bias.any() for m in convs)


def test_config_rebuilds_the_same_gan():
    gan = make_gan("cdcgan", (1, 28, 28), nz=8, ngf=4, ndf=4)
    clone = GENERATORS.create("cdcgan", **gan.config)
    clone.load_state_dict(gan.state_dict())
    assert torch.equal(clone.sample(4, seed=1), gan.sample(4, seed=1))


@pytest.mark.parametrize("shape", [(1, 8, 16), (1, 6, 6), (3, 7, 7)])
def test_unsupported_shapes_are_user_errors(shape):
    with pytest.raises(UserError):
        make_gan("dcgan", shape)


# -- sampling -----------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_range_shape_and_seed(family):
    gan = make_gan(family, (1, 28, 28), nz=8, ngf=8, ndf=8)
    gan.train()
    global_state = torch.get_rng_state()
    a = gan.sample(10, seed=3, batch_size=4)
    assert torch.equal(torch.get_rng_state(), global_state)  # a private stream
    assert gan.training  # mode restored
    assert a.shape == (10, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, gan.sample(10, seed=3))  # batching does not change the draw
    assert not torch.equal(a, gan.sample(10, seed=4))
    assert gan.sample(0).shape == (0, 1, 28, 28)


def test_conditional_labels():
    gan = make_gan("cdcgan", nz=8, ngf=8, ndf=8)
    assert torch.equal(gan.default_labels(12), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]))
    assert torch.equal(
        gan.sample(12, seed=0), gan.sample(12, labels=gan.default_labels(12), seed=0)
    )
    assert not torch.equal(gan.sample(10, labels=torch.zeros(10), seed=0), gan.sample(10, seed=0))
    with pytest.raises(ValueError):
        gan.sample(4, labels=torch.zeros(3))
    with pytest.raises(ValueError):
        gan.sample(2, labels=torch.tensor([0, 10]))
    with pytest.raises(ValueError):
        make_gan("dcgan").sample(2, labels=torch.zeros(2))


def test_generate_is_differentiable_in_z():
    gan = make_gan("cdcgan", nz=8, ngf=8, ndf=8).eval()
    z = torch.randn(4, 8, requires_grad=True)
    x = gan.generate(z, torch.arange(4))
    assert 0 <= x.min() and x.max() <= 1
    x.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


# -- training -----------------------------------------------------------------


def blob_images(n: int = 64) -> tuple[Tensor, Tensor]:
    """A bright square at one of two places on a dark background; label = place."""
    y = torch.arange(n) % 2
    x = torch.zeros(n, 1, 8, 8)
    x[y == 0, :, 1:4, 1:4] = 1.0
    x[y == 1, :, 4:7, 4:7] = 1.0
    return x, y


@pytest.mark.parametrize("family", FAMILIES)
def test_training_is_reproducible_and_finite(family):
    x, y = blob_images()
    histories = []
    for _ in range(2):
        gan = make_gan(family, num_classes=2, nz=8, ngf=8, ndf=8)
        histories.append(
            train_gan(gan, x, y, steps=6, batch_size=16, d_steps=2, seed=5, progress=False)
        )
        assert not gan.training
    first, second = histories
    assert first.steps == 6 and len(first.d_loss) == len(first.g_loss) == 6
    assert all(math.isfinite(v) for v in first.d_loss + first.g_loss) and first.seconds > 0
    assert (first.d_loss, first.g_loss) == (second.d_loss, second.g_loss)
    gan = make_gan(family, num_classes=2, nz=8, ngf=8, ndf=8)
    other = train_gan(gan, x, y, steps=6, batch_size=16, seed=6, progress=False)
    assert other.g_loss != first.g_loss


def test_training_moves_samples_towards_the_data():
    x, y = blob_images()
    gan = make_gan("cdcgan", num_classes=2, nz=8, ngf=16, ndf=16)
    labels = torch.arange(200) % 2

    def error() -> float:  # per-class mean image, generated vs real
        fake = gan.sample(200, labels=labels, seed=0)
        return sum(
            (fake[labels == c].mean(0) - x[y == c].mean(0)).abs().mean().item() for c in (0, 1)
        )

    before = error()
    train_gan(gan, x, y, steps=150, batch_size=32, seed=0, progress=False)
    assert error() < before / 2


def test_training_input_errors():
    x, y = blob_images()
    gan = make_gan("cdcgan", num_classes=2, nz=8, ngf=8, ndf=8)
    with pytest.raises(UserError):
        train_gan(gan, x, None, steps=1, progress=False)
    with pytest.raises(UserError):
        train_gan(gan, x[:, :, :4, :4], y, steps=1, progress=False)
    with pytest.raises(UserError):
        train_gan(gan, x, y, steps=0, progress=False)


# -- metrics ------------------------------------------------------------------


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-6)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, -2.0])
    expected = 9.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, np.diag(v2), mu2, np.diag(v1)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_with_singular_covariances():
    s1, s2 = np.diag([1.0, 4.0, 0.0]), np.diag([9.0, 1.0, 0.0])
    with np.errstate(all="raise"):
        value = frechet_distance(np.zeros(3), s1, np.zeros(3), s2)
    assert value == pytest.approx(4.0 + 1.0, abs=1e-3)


def test_precision_recall_coverage():
    real = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    same = precision_recall_coverage(real, real.clone(), k=5)
    assert same == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}
    far = precision_recall_coverage(real, real + 100, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # a fake set collapsed onto one real point is precise but covers little
    collapsed = precision_recall_coverage(real, real[:1].repeat(300, 1), k=5)
    assert (
        collapsed["precision"] == 1.0
        and collapsed["recall"] < 0.05
        and collapsed["coverage"] < 0.05
    )


def test_class_balance():
    uniform = class_balance(torch.arange(100) % 10, 10)
    assert uniform == {"class_coverage": 1.0, "class_kl": pytest.approx(0.0)}
    collapsed = class_balance(torch.zeros(100, dtype=torch.long), 10)
    assert collapsed == {"class_coverage": 0.1, "class_kl": pytest.approx(math.log(10))}


class LevelGenerator(nn.Module):
    """Draws a flat 4x4 image of brightness (label + shift) / (K - 1), plus a little noise."""

    def __init__(self, num_classes: int, shift: int = 0) -> None:
        super().__init__()
        self.num_classes, self.shift = num_classes, shift
        self.unused = nn.Parameter(torch.zeros(()))  # gives the GAN a device

    def forward(self, z: Tensor, labels: Tensor | None) -> Tensor:
        if labels is None:
            labels = torch.zeros(len(z), dtype=torch.long)
        level = ((labels + self.shift) % self.num_classes).float() / (self.num_classes - 1)
        flat = (level * 2 - 1)[:, None, None, None] + 0.01 * z[:, :1, None, None]
        return flat.expand(-1, 1, 4, 4)


class NearestLevel(nn.Module):
    """Logits: minus the squared distance of the mean pixel to each class's level."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("levels", torch.linspace(0, 1, num_classes))

    def forward(self, features: Tensor) -> Tensor:
        return -((features.mean(1, keepdim=True) - self.levels) ** 2)


class BrightnessJudge(Classifier):
    """A stub judge that reads the class off the image brightness."""

    def __init__(self, num_classes: int) -> None:
        super().__init__((1, 4, 4), num_classes, mean=[0.0], std=[1.0])
        self.body, self.head, self.feature_dim = nn.Flatten(), NearestLevel(num_classes), 16


def stub_gan(conditional: bool, shift: int = 0, k: int = 5) -> GAN:
    return GAN(
        LevelGenerator(k, shift),
        nn.Identity(),
        nz=4,
        num_classes=k,
        conditional=conditional,
        out_shape=(1, 4, 4),
    )


def test_label_fidelity_with_stub_judge():
    judge = BrightnessJudge(5)
    x_real = stub_gan(True).sample(100, seed=0)
    y_real = torch.arange(100) % 5
    right = gan_metrics(stub_gan(True), judge, x_real, y_real, n=100)
    assert right["label_fidelity"] == 1.0 and right["class_coverage"] == 1.0
    assert right["class_kl"] == pytest.approx(0.0, abs=1e-9)
    assert min(right["precision"], right["recall"], right["coverage"]) > 0.9
    wrong = gan_metrics(stub_gan(True, shift=1), judge, x_real, y_real, n=100)
    assert wrong["label_fidelity"] == 0.0
    # same image distribution, wrong labels: FID cannot tell, label fidelity can
    assert wrong["fid"] == pytest.approx(right["fid"], abs=1e-3)
    unconditional = gan_metrics(stub_gan(False), judge, x_real, y_real, n=100)
    assert math.isnan(unconditional["label_fidelity"])
    assert unconditional["class_coverage"] == 0.2
    assert unconditional["class_kl"] == pytest.approx(math.log(5))


# -- grid ---------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_grid(tmp_path, family):
    gan = make_gan(family, (3, 32, 32), num_classes=3, nz=8, ngf=4, ndf=4)
    path = save_sample_grid(gan, tmp_path / "grids" / "samples.png", per_class=4, n=9, seed=0)
    assert [p.name for p in path.parent.iterdir()] == ["samples.png"]
    image = mpimg.imread(path)
    rows, cols = (3, 4) if gan.conditional else (3, 3)
    assert image.shape[:2] == (rows * 33 + 1, cols * 33 + 1)


# -- end to end: conditional DCGAN on scikit-learn digits ---------------------


class TinyCNN(Classifier):
    def __init__(self) -> None:
        super().__init__((1, 8, 8), 10)
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 16, 64),
            nn.ReLU(),
        )
        self.feature_dim = 64
        self.head = nn.Linear(64, 10)


def train_judge(x: Tensor, y: Tensor, *, epochs: int = 8) -> TinyCNN:
    torch.manual_seed(0)
    judge = TinyCNN()
    opt = torch.optim.Adam(judge.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        for i in perm.split(64):
            loss = F.cross_entropy(judge(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return judge.eval()


def test_cdcgan_learns_digit_classes():
    digits = load_digits()
    x = torch.tensor(digits.images / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(digits.target)
    judge = train_judge(x, y)
    assert (predict(judge, x) == y).float().mean() > 0.97

    gan = make_gan("cdcgan", (1, 8, 8), ngf=64, ndf=64)
    untrained = gan_metrics(gan, judge, x, y, n=500)
    history = train_gan(gan, x, y, steps=700, batch_size=64, seed=0, progress=False)
    trained = gan_metrics(gan, judge, x, y, n=500)
    assert trained["label_fidelity"] >= 0.8
    assert trained["class_coverage"] == 1.0
    assert trained["fid"] < untrained["fid"] / 3
    assert trained["coverage"] > untrained["coverage"]
    assert history.steps == 700
