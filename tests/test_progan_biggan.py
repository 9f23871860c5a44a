"""ProGAN (growth schedule, fade-in, equalized learning rate, minibatch stddev) and BigGAN
(truncation, moving average of G, spectral norm, projection discriminator)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

import robustbench_gan.gans.biggan  # noqa: F401
import robustbench_gan.gans.progan  # noqa: F401
from robustbench_gan.errors import UserError
from robustbench_gan.gans import GAN, train_gan
from robustbench_gan.gans.biggan import z_chunks
from robustbench_gan.gans.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    growth_at,
    level_widths,
)
from robustbench_gan.registry import GENERATORS

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
TINY = {
    "progan": dict(nz=8, ngf=8, ndf=8, phase_images=32),
    "biggan": dict(nz=8, ngf=8, ndf=8, shared_dim=4),
}


def make(family: str, shape=(1, 8, 8), seed: int = 0, **kwargs) -> GAN:
    torch.manual_seed(seed)
    return GENERATORS.create(family, in_shape=shape, **{**TINY[family], **kwargs})


def blob_images(n: int = 64) -> tuple[Tensor, Tensor]:
    """A bright square at one of two places on a dark background; label = place."""
    y = torch.arange(n) % 2
    x = torch.zeros(n, 1, 8, 8)
    x[y == 0, :, 1:4, 1:4] = 1.0
    x[y == 1, :, 4:7, 4:7] = 1.0
    return x, y


def up(x: Tensor, factor: int = 2) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest")


# -- both families --------------------------------------------------------------


@pytest.mark.parametrize("family", ["progan", "biggan"])
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_sampling_and_config(family, shape):
    gan = make(family, shape, num_classes=3)
    assert gan.conditional == (family == "biggan")
    a = gan.sample(5, seed=1)
    assert a.shape == (5, *shape) and 0 <= a.min() and a.max() <= 1
    clone = GENERATORS.create(family, **gan.config)
    clone.load_state_dict(gan.state_dict())
    assert torch.equal(clone.sample(5, seed=1), a)
    assert not torch.equal(gan.sample(5, seed=2), a)


@pytest.mark.parametrize("family", ["progan", "biggan"])
@pytest.mark.parametrize("shape", [(1, 8, 16), (1, 6, 6), (3, 7, 7)])
def test_unsupported_shapes_are_user_errors(family, shape):
    with pytest.raises(UserError):
        make(family, shape)


@pytest.mark.parametrize("family", ["progan", "biggan"])
def test_training_is_reproducible(family):
    x, y = blob_images()
    runs = []
    for _ in range(2):
        gan = make(family, num_classes=2)
        history = train_gan(gan, x, y, steps=4, batch_size=8, seed=3, progress=False)
        runs.append((history, gan.sample(4, seed=0)))
    (first, a), (second, b) = runs
    assert all(math.isfinite(v) for v in first.d_loss + first.g_loss)
    assert (first.d_loss, first.g_loss) == (second.d_loss, second.g_loss)
    assert torch.equal(a, b)


# -- ProGAN ---------------------------------------------------------------------


def test_progan_paper_defaults():
    gan = GENERATORS.create("progan", in_shape=(3, 32, 32))
    assert (gan.config["phase_images"], gan.config["ema_decay"]) == (800_000, 0.999)
    assert gan.train_defaults == dict(
        loss="wgan_gp", gp_weight=10.0, drift=0.001, lr=0.001, beta1=0.0, beta2=0.99, d_steps=1
    )
    assert level_widths(64, 3) == [512, 256, 128, 64]


def test_growth_schedule():
    phase = 100
    # level 0 for one phase; per new level a fade and a stabilisation phase; then the top
    expected = {
        0: (0, 1.0),
        99: (0, 1.0),
        100: (1, 0.0),
        150: (1, 0.5),
        200: (1, 1.0),
        299: (1, 1.0),
        300: (2, 0.0),
        375: (2, 0.75),
        400: (2, 1.0),
        10**6: (2, 1.0),
    }
    for seen, (level, alpha) in expected.items():
        assert growth_at(seen, phase, top=2) == (level, pytest.approx(alpha))
    assert growth_at(300, phase, top=1) == (1, 1.0)
    # alpha rises linearly through a fade phase
    alphas = [growth_at(100 + 10 * i, phase, top=2)[1] for i in range(11)]
    assert alphas == pytest.approx([i / 10 for i in range(11)])


def test_training_loop_drives_the_growth():
    """begin_step sees the images shown (batch x accumulate per step); level and alpha are
    buffers, so a reloaded state dict keeps the resolution training reached."""
    x, _ = blob_images()
    gan = make("progan", phase_images=32)
    seen: list[tuple[int, float]] = []
    begin = gan.begin_step

    def recording(step: int, steps: int, images_seen: int) -> None:
        begin(step, steps, images_seen)
        seen.append(gan.schedule())

    gan.begin_step = recording
    train_gan(gan, x, None, steps=6, batch_size=8, accumulate=2, seed=0, progress=False)
    assert seen == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (1, 1.0)]
    assert {"level", "alpha"} <= set(gan.state_dict())
    clone = GENERATORS.create("progan", **gan.config)
    assert clone.schedule() == (0, 1.0)
    clone.load_state_dict(gan.state_dict())
    assert clone.schedule() == (1, 1.0)


def set_schedule(gan: GAN, level: int, alpha: float) -> None:
    gan.level.fill_(level)
    gan.alpha.fill_(alpha)


def test_generator_fade_in():
    gan = make("progan", (1, 8, 8))
    g = gan.generator
    z = torch.randn(5, 8)
    h = g.stem(g.stem_linear(g.pixel_norm(z)).view(5, -1, 4, 4))
    old = up(g.to_rgb[0](h))
    new = g.to_rgb[1](g.blocks[0](h))
    assert not torch.allclose(old, new)
    for alpha in (0.0, 0.3, 1.0):
        out = g(z, level=1, alpha=alpha)
        assert out.shape == (5, 1, 8, 8)
        torch.testing.assert_close(out, torch.tanh((1 - alpha) * old + alpha * new))
    torch.testing.assert_close(g(z, level=0), torch.tanh(g.to_rgb[0](h)))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_fade_starts_from_the_previous_level(shape):
    """At alpha 0 a new level changes nothing: G's output is the upsampled output of the
    level below, and D sees the average-pooled image through the level below."""
    gan = make("progan", shape)
    z, x = torch.randn(4, 8), torch.rand(4, *shape) * 2 - 1
    top = gan.generator.top
    for level in range(1, top + 1):
        below = gan.generator(z, level=level - 1)
        torch.testing.assert_close(gan.generator(z, level=level, alpha=0.0), up(below))
        x_level = F.avg_pool2d(x, 2 ** (top - level)) if level < top else x
        torch.testing.assert_close(
            gan.discriminator(x_level, level=level, alpha=0.0),
            gan.discriminator(F.avg_pool2d(x_level, 2), level=level - 1),
        )


def test_equalized_learning_rate():
    gan = make("progan", (3, 32, 32), ngf=16, ndf=16)
    layers = [m for m in gan.modules() if isinstance(m, EqualizedConv2d | EqualizedLinear)]
    assert not any(isinstance(m, nn.Conv2d | nn.Linear) for m in gan.modules())
    weights = torch.cat([m.weight.detach().flatten() for m in layers])
    assert abs(weights.std().item() - 1) < 0.02 and abs(weights.mean().item()) < 0.02
    for m in layers:
        fan_in = m.weight[0].numel()
        gain = 1.0 if m.weight.shape[0] in (1, 3) else math.sqrt(2)  # toRGB and output: 1
        assert m.scale == pytest.approx(gain / math.sqrt(fan_in))
    conv = EqualizedConv2d(16, 32, 3)
    x = torch.randn(8, 16, 6, 6)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * conv.scale, padding=1))
    # He scaling keeps the output variance at gain^2 = 2 whatever the fan-in
    for fan_in in (16, 1024):
        out = EqualizedLinear(fan_in, 64)(torch.randn(512, fan_in))
        assert out.var().item() == pytest.approx(2.0, rel=0.15)


def test_minibatch_stddev():
    x = torch.stack([torch.zeros(3, 4, 4), torch.full((3, 4, 4), 2.0)])
    out = MinibatchStddev()(x)
    assert out.shape == (2, 4, 4, 4)
    torch.testing.assert_close(out[:, :3], x)
    torch.testing.assert_close(out[:, 3], torch.ones(2, 4, 4))  # |0 - 2| / 2 everywhere
    x = torch.randn(16, 5, 3, 3)
    expected = x.std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(MinibatchStddev()(x)[:, 5], expected.expand(16, 3, 3))
    same = MinibatchStddev()(torch.ones(4, 2, 3, 3))
    assert same[:, 2].max() < 1e-3
    gan = make("progan")
    assert isinstance(gan.discriminator.head[0], MinibatchStddev)
    # D's verdict on an image depends on the rest of its minibatch
    x = torch.rand(4, 1, 8, 8)
    alone = gan.discriminator(x[:2])
    assert not torch.allclose(alone, gan.discriminator(torch.cat([x[:2], x[:2] * 0.1]))[:2])


@pytest.mark.parametrize(
    "shape, level, alpha, side",
    [
        ((1, 8, 8), 0, 1.0, 4),
        ((1, 8, 8), 1, 0.0, 8),
        ((1, 8, 8), 1, 0.25, 8),
        ((1, 8, 8), 1, 1.0, 8),
        ((3, 32, 32), 0, 1.0, 4),
        ((3, 32, 32), 2, 0.5, 16),
        ((3, 32, 32), 3, 1.0, 32),
        ((1, 28, 28), 1, 0.75, 14),
    ],
)
def test_prepare_real_at_each_level(shape, level, alpha, side):
    gan = make("progan", shape)
    set_schedule(gan, level, alpha)
    x = torch.rand(3, *shape) * 2 - 1
    out = gan.prepare_real(x)
    current = F.avg_pool2d(x, shape[-1] // side)
    expected = (
        current if alpha == 1 else (1 - alpha) * up(F.avg_pool2d(current, 2)) + alpha * current
    )
    assert out.shape == (3, shape[0], side, side)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.mean(), x.mean())  # pooling and blending keep the mean
    fakes, _ = gan.train_forward(torch.randn(3, 8), None)
    assert fakes.shape == out.shape  # G trains at the same resolution
    assert gan.discriminate(out, None)[0].shape == (3,)


def test_generate_upsamples_before_the_top_level():
    """Samples come from the moving average of G, at full size."""
    gan = make("progan", (1, 28, 28)).eval()
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(1)
    gan.end_step()
    ema = gan.generator_ema
    z = torch.randn(2, 8)
    set_schedule(gan, 1, 1.0)
    images = gan.generate(z)
    assert images.shape == (2, 1, 28, 28)
    torch.testing.assert_close(images, up((ema(z, level=1) + 1) / 2))
    assert not torch.allclose(images, up((gan.generator(z, level=1) + 1) / 2))
    set_schedule(gan, 2, 0.5)
    torch.testing.assert_close(gan.generate(z), (ema(z, level=2, alpha=0.5) + 1) / 2)


def test_progan_learns_the_blobs():
    x, _ = blob_images()
    gan = make("progan", ngf=16, ndf=16, phase_images=400)

    def error() -> float:  # mean image, generated vs real
        return (gan.sample(200, seed=0).mean(0) - x.mean(0)).abs().mean().item()

    before = error()
    train_gan(gan, x, None, steps=120, batch_size=16, seed=0, progress=False)
    assert gan.schedule() == (1, 1.0)
    assert error() < before / 2


# -- BigGAN ---------------------------------------------------------------------


def test_biggan_paper_defaults():
    gan = GENERATORS.create("biggan", in_shape=(3, 32, 32))
    assert gan.train_defaults == dict(
        loss="hinge", d_steps=2, lr=5e-5, d_lr=2e-4, beta1=0.0, beta2=0.999
    )
    assert (gan.nz, gan.config["shared_dim"], gan.config["truncation"]) == (120, 128, None)


def test_hierarchical_latent():
    assert z_chunks(120, 4) == [30, 30, 30, 30] and z_chunks(10, 3) == [4, 3, 3]
    gan = make("biggan", (3, 32, 32), nz=12).eval()
    g = gan.generator
    assert g.chunks == [3, 3, 3, 3]
    for block, chunk in zip(g.blocks, g.chunks[1:], strict=True):
        for bn in (block.bn1, block.bn2):
            assert bn.gain.in_features == bn.bias.in_features == 4 + chunk  # [shared, chunk]
    z, labels = torch.randn(2, 12), torch.tensor([0, 1])
    base = g(z, labels)
    for i in range(4):  # every chunk reaches the image
        moved = z.clone()
        moved[:, 3 * i : 3 * i + 3] += 1
        assert not torch.allclose(g(moved, labels), base)
    assert not torch.allclose(g(z, labels.flip(0)), base)


def test_spectral_norm_everywhere():
    gan = make("biggan", (3, 32, 32))
    layers = [
        m
        for net in (gan.generator, gan.discriminator)
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)
    ]
    unnormed = [m for m in layers if not parametrize.is_parametrized(m, "weight")]
    assert unnormed == [gan.generator.shared]  # G's shared embedding is a plain table
    x = torch.rand(16, 3, 32, 32) * 2 - 1
    labels = torch.arange(16) % 10
    for _ in range(10):  # power iterations run in train mode
        gan.discriminator(x, labels)
        gan.generator(torch.randn(16, 8), labels)
    for m in layers[1:]:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_projection_discriminator_uses_the_label():
    gan = make("biggan")
    d = gan.discriminator.eval()
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    a, b = torch.zeros(6, dtype=torch.long), torch.full((6,), 3)
    h = d.features(x)
    torch.testing.assert_close(d(x, a), d.linear(h).flatten() + (d.embed(a) * h).sum(1))
    # the label enters only through <embed(y), h>
    torch.testing.assert_close(d(x, a) - d(x, b), ((d.embed(a) - d.embed(b)) * h).sum(1))
    assert not torch.allclose(d(x, a), d(x, b))


def test_truncation_only_at_sampling():
    gan = make("biggan", truncation=0.5)
    gan.eval()
    z = gan.sample_z(2000, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # redrawn, not clipped
    gan.train()
    z = gan.sample_z(50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
    plain = make("biggan")
    assert not torch.equal(gan.sample(6, seed=0), plain.sample(6, seed=0))
    # training draws the same z with and without truncation
    x, y = blob_images()
    runs = [train_gan(g, x, y, steps=2, batch_size=8, progress=False) for g in (gan, plain)]
    assert runs[0].g_loss == runs[1].g_loss and runs[0].d_loss == runs[1].d_loss


def test_ema_follows_the_generator():
    gan = make("biggan", ema_decay=0.9)
    average, g = gan.generator_ema, gan.generator
    ema = average.network
    assert not any(p.requires_grad for p in ema.parameters())
    ids = {id(p) for p in g.parameters()}
    assert not any(id(p) in ids for p in ema.parameters())  # not what the optimizer steps
    assert average.current_decay() == pytest.approx(0.1)  # warm-up (1 + n) / (10 + n)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p))
    g(torch.randn(8, 8), torch.arange(8) % 10)  # moves G's batch-norm statistics
    before = [p.clone() for p in ema.parameters()]
    distance = sum((e - p).abs().sum() for e, p in zip(before, g.parameters(), strict=True))
    gan.end_step()
    for b, e, p in zip(before, ema.parameters(), g.parameters(), strict=True):
        torch.testing.assert_close(e, 0.1 * b + 0.9 * p)
    after = sum((e - p).abs().sum() for e, p in zip(ema.parameters(), g.parameters(), strict=True))
    assert after < distance
    for e, b in zip(ema.buffers(), g.buffers(), strict=True):
        assert torch.equal(e, b)
    average.updates.fill_(1000)
    assert average.current_decay() == 0.9
    # sampling uses the moving average, not G
    gan.eval()
    z, labels = torch.randn(3, 8), torch.arange(3)
    torch.testing.assert_close(gan.generate(z, labels), (ema(z, labels) + 1) / 2)
    assert not torch.allclose(gan.generate(z, labels), (g(z, labels) + 1) / 2)


def test_biggan_trains_with_accumulation():
    x, y = blob_images()
    gan = make("biggan", num_classes=2)
    history = train_gan(gan, x, y, steps=3, batch_size=8, accumulate=2, seed=0, progress=False)
    assert history.options["accumulate"] == 2 and history.options["loss"] == "hinge"
    assert all(math.isfinite(v) for v in history.d_loss + history.g_loss)
    assert int(gan.generator_ema.updates) == 3


def test_biggan_learns_the_labels():
    """Samples of class c put the blob where class c has it (the label reaches G via the
    conditional batch norms and D via the projection)."""
    x, y = blob_images()
    gan = make("biggan", num_classes=2, ngf=16, ndf=16, shared_dim=32, ema_decay=0.9)
    labels = torch.arange(200) % 2

    def fidelity() -> float:
        fake = gan.sample(200, labels=labels, seed=0)[:, 0]
        first = fake[:, 1:4, 1:4].mean((1, 2)) > fake[:, 4:7, 4:7].mean((1, 2))
        return (first == (labels == 0)).float().mean().item()

    assert fidelity() < 0.7
    train_gan(gan, x, y, steps=150, batch_size=16, lr=1e-3, d_lr=1e-3, seed=0, progress=False)
    assert fidelity() > 0.9
