"""Generator families gan (Goodfellow 2014), acgan (Odena 2017) and stackgan (Zhang 2017)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import robustbench_gan.gans.acgan  # noqa: F401
import robustbench_gan.gans.gan  # noqa: F401
import robustbench_gan.gans.stackgan  # noqa: F401
from robustbench_gan.errors import UserError
from robustbench_gan.gans import GAN, train_gan
from robustbench_gan.gans.gan import Maxout
from robustbench_gan.gans.losses import generator_loss
from robustbench_gan.gans.stackgan import StackGAN, kl_to_standard_normal
from robustbench_gan.registry import GENERATORS

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
FAMILIES = ["gan", "acgan", "stackgan"]
TINY = {
    "gan": dict(nz=8, g_hidden=[32], d_hidden=[16], pieces=2),
    "acgan": dict(nz=8, ngf=8, ndf=8, embed_dim=4),
    "stackgan": dict(nz=8, c_dim=4, d_cond_dim=4, ngf=8, ndf=8, res_blocks=1),
}


def make_gan(family: str, shape=(1, 8, 8), seed: int = 0, **kwargs) -> GAN:
    torch.manual_seed(seed)
    return GENERATORS.create(family, in_shape=shape, **{**TINY[family], **kwargs})


def labels_for(gan: GAN, n: int) -> Tensor | None:
    return torch.arange(n) % gan.num_classes if gan.conditional else None


def blob_images(n: int = 64) -> tuple[Tensor, Tensor]:
    """A bright 4x4 square in the top-left or bottom-right of a dark 8x8 image; label = place."""
    y = torch.arange(n) % 2
    x = torch.zeros(n, 1, 8, 8)
    x[y == 0, :, :4, :4] = 1.0
    x[y == 1, :, 4:, 4:] = 1.0
    return x, y


# -- every family ----------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_samples_have_the_image_shape_and_range(family, shape):
    gan = make_gan(family, shape)
    images = gan.sample(6, seed=0)
    assert images.shape == (6, *shape)
    assert 0 <= images.min() and images.max() <= 1
    assert torch.equal(images, gan.sample(6, seed=0))
    assert not torch.equal(images, gan.sample(6, seed=1))


@pytest.mark.parametrize("family", FAMILIES)
def test_config_rebuilds_the_same_architecture(family):
    gan = make_gan(family, (1, 28, 28))
    clone = GENERATORS.create(family, **gan.config)
    clone.load_state_dict(gan.state_dict())
    assert type(clone) is type(gan) and clone.nz == gan.nz
    assert torch.equal(clone.sample(4, seed=1), gan.sample(4, seed=1))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_losses(family):
    x, y = blob_images()
    runs = []
    for seed in (5, 5, 6):
        gan = make_gan(family, num_classes=2)
        history = train_gan(gan, x, y, steps=4, batch_size=16, seed=seed, progress=False)
        assert all(math.isfinite(v) for v in history.d_loss + history.g_loss)
        runs.append((history.d_loss, history.g_loss))
    assert runs[0] == runs[1] and runs[0] != runs[2]


@pytest.mark.parametrize(
    "family, params, options",
    [
        ("gan", dict(g_hidden=[64], d_hidden=[32]), dict(steps=150, lr=1e-3)),
        ("acgan", dict(ngf=16, ndf=16, dropout=0.0), dict(steps=150, lr=1e-3)),
        ("stackgan", dict(ngf=16, ndf=16), dict(steps=200, lr=1e-3)),
    ],
)
def test_training_moves_samples_towards_the_data(family, params, options):
    x, y = blob_images()
    gan = make_gan(family, num_classes=2, **params)
    labels = labels_for(gan, 200)
    blobs = torch.stack([x[y == c][0] for c in (0, 1)])

    def error() -> float:
        """Mean pixel distance to the blob of the sample's class (conditional) or the nearer."""
        distances = (gan.sample(200, labels=labels, seed=0)[:, None] - blobs).abs().mean((2, 3, 4))
        if labels is None:
            return distances.min(1).values.mean().item()
        return distances.gather(1, labels[:, None]).mean().item()

    before = error()
    train_gan(gan, x, y, batch_size=32, seed=0, progress=False, **options)
    assert error() < before / 2


@pytest.mark.parametrize("family", ["acgan", "stackgan"])
@pytest.mark.parametrize("shape", [(1, 8, 16), (1, 6, 6), (3, 7, 7)])
def test_unsupported_shapes_are_user_errors(family, shape):
    with pytest.raises(UserError):
        make_gan(family, shape)


@pytest.mark.parametrize("shape", [(1, 8, 16), (1, 6, 6), (3, 7, 7)])
def test_fully_connected_gan_takes_any_shape(shape):
    assert make_gan("gan", shape).sample(2, seed=0).shape == (2, *shape)


@pytest.mark.parametrize(
    "family, defaults",
    [
        ("acgan", dict(nz=100, embed_dim=10, dropout=0.5)),
        ("stackgan", dict(nz=100, c_dim=128, d_cond_dim=128, kl_weight=1.0, stage1_share=0.5)),
    ],
)
def test_paper_defaults(family, defaults):
    gan = GENERATORS.create(family, in_shape=(1, 8, 8))
    assert defaults.items() <= gan.config.items()
    assert gan.train_defaults == dict(loss="nonsaturating", d_steps=1, lr=2e-4, beta1=0.5)


# -- gan: Goodfellow et al. 2014 ---------------------------------------------------


def test_gan_paper_architecture():
    gan = GENERATORS.create("gan", in_shape=(1, 28, 28))  # the paper's defaults
    assert not gan.conditional and gan.train_defaults["loss"] == "nonsaturating"
    g_linear = [m for m in gan.generator.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linear] == [
        (100, 1200),
        (1200, 1200),
        (1200, 784),
    ]
    assert isinstance(gan.generator.net[-1], nn.Tanh)
    maxouts = [m for m in gan.discriminator.modules() if isinstance(m, Maxout)]
    assert [(m.units, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    dropouts = [m.p for m in gan.discriminator.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.2, 0.5, 0.5]
    assert gan.discriminator(torch.rand(3, 1, 28, 28) * 2 - 1).shape == (3,)


def test_maxout_takes_the_max_over_pieces():
    layer = Maxout(2, units=3, pieces=4)
    x = torch.randn(5, 2)
    pieces = layer.linear(x).view(5, 3, 4)
    assert torch.equal(layer(x), pieces.max(dim=2).values)


def test_saturating_loss_vanishes_where_nonsaturating_does_not():
    """Paper, Sec. 3: early on D rejects fakes with confidence and log(1 - D(G(z)))
    saturates; maximising log D(G(z)) instead keeps a strong gradient."""
    grads = {}
    for loss in ("saturating", "nonsaturating"):
        logits = torch.full((4,), -12.0, requires_grad=True)  # D(G(z)) ~ 6e-6
        generator_loss(loss, logits).backward()
        grads[loss] = logits.grad.abs().max().item()
    assert grads["saturating"] < 1e-5
    assert grads["nonsaturating"] > 0.2  # -> 1 / batch as D(G(z)) -> 0
    # both losses push the logit up (make fakes look real)
    for loss in ("saturating", "nonsaturating"):
        logits = torch.zeros(4, requires_grad=True)
        generator_loss(loss, logits).backward()
        assert (logits.grad < 0).all()


@pytest.mark.parametrize("loss", ["saturating", "nonsaturating"])
def test_gan_trains_with_either_loss(loss):
    x, y = blob_images()
    histories = []
    for _ in range(2):
        gan = make_gan("gan")
        histories.append(train_gan(gan, x, y, steps=5, batch_size=16, loss=loss, progress=False))
    first, second = histories
    assert first.options["loss"] == loss
    assert all(math.isfinite(v) for v in first.d_loss + first.g_loss)
    assert (first.d_loss, first.g_loss) == (second.d_loss, second.g_loss)
    # the saturating G loss is log(1 - D(G(z))) < 0, the non-saturating -log D(G(z)) > 0
    sign = -1 if loss == "saturating" else 1
    assert all(sign * v > 0 for v in first.g_loss)


# -- acgan: Odena et al. 2017 ------------------------------------------------------


def test_acgan_discriminator_has_two_heads_and_no_label_input():
    gan = make_gan("acgan", (3, 32, 32), num_classes=7).eval()
    assert gan.conditional
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    adv, classes = gan.discriminate(x, torch.zeros(5, dtype=torch.long))
    assert adv.shape == (5,) and classes.shape == (5, 7)
    other_adv, other_classes = gan.discriminate(x, torch.full((5,), 6))  # D never sees labels
    assert torch.equal(adv, other_adv) and torch.equal(classes, other_classes)
    assert sum(isinstance(m, nn.Dropout) for m in gan.discriminator.modules()) == 3


def test_acgan_generator_uses_the_class():
    gan = make_gan("acgan").eval()
    z = torch.randn(4, gan.nz)
    assert not torch.equal(gan.generate(z, torch.zeros(4)), gan.generate(z, torch.ones(4)))


def test_acgan_loop_adds_the_auxiliary_classification_loss():
    """With both heads at zero, D's loss is 2 log 2 (real/fake) + 2 log K (class
    cross-entropy on the real and the fake batch) and G's is log 2 + log K."""
    x, y = blob_images()
    gan = make_gan("acgan", num_classes=3)
    for head in (gan.discriminator.adversarial, gan.discriminator.classifier):
        nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    history = train_gan(gan, x, y, steps=1, batch_size=16, lr=1e-12, progress=False)
    assert history.d_loss[0] == pytest.approx(2 * math.log(2) + 2 * math.log(3), rel=1e-5)
    assert history.g_loss[0] == pytest.approx(math.log(2) + math.log(3), rel=1e-5)


# -- stackgan: Zhang et al. 2017 ---------------------------------------------------


def test_conditioning_augmentation_kl():
    zeros = torch.zeros(3, 5)
    assert kl_to_standard_normal(zeros, zeros).item() == pytest.approx(0.0)
    mu, log_sigma = torch.full((2, 4), 0.5), torch.full((2, 4), math.log(2.0))
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1) / 2 - log s per dimension
    expected = (0.25 + 4 - 1) / 2 - math.log(2.0)
    assert kl_to_standard_normal(mu, log_sigma).item() == pytest.approx(expected)


def test_stackgan_returns_the_weighted_kl_as_extra_generator_loss():
    gan = make_gan("stackgan", kl_weight=3.0)
    z, labels = gan.sample_z(6), torch.arange(6)
    augment = gan.generator["stage1"].augment
    mu, log_sigma = augment.moments(augment.embed(labels)).chunk(2, dim=1)
    image, extra = gan.train_forward(z, labels)
    assert image.shape == (6, 1, 4, 4)  # stage I draws at half the side
    assert extra.item() == pytest.approx(3.0 * kl_to_standard_normal(mu, log_sigma).item())
    assert make_gan("stackgan", kl_weight=0.0).train_forward(z, labels)[1].item() == 0.0


def test_stackgan_latent_holds_noise_and_both_stages_eps():
    gan = make_gan("stackgan", nz=8, c_dim=4)
    assert gan.nz == 8 + 2 * 4
    z, labels = gan.eval().sample_z(3), torch.arange(3)
    base = gan.generate(z, labels)
    for part in (slice(0, 8), slice(8, 12), slice(12, 16)):
        moved = z.clone()
        moved[:, part] += 1
        assert not torch.equal(gan.generate(moved, labels), base)


def stage_trace(gan: StackGAN) -> list[int]:
    """Records the stage ``gan`` is in after each ``begin_step``."""
    stages: list[int] = []
    begin = gan.begin_step

    def recording(step: int, steps: int, images_seen: int) -> None:
        begin(step, steps, images_seen)
        stages.append(gan.current_stage)

    gan.begin_step = recording
    return stages


def frozen_copy(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_stackgan_schedule_trains_stage_one_then_stage_two():
    x, y = blob_images()
    gan = make_gan("stackgan", num_classes=2, stage1_share=0.5)
    init = frozen_copy(gan)
    stages = stage_trace(gan)
    options = dict(batch_size=16, seed=3, progress=False)
    train_gan(gan, x, y, steps=6, **options)
    assert stages == [1, 1, 1, 2, 2, 2]

    # the same run stopped after stage I: stage I ends identical, weights and BN statistics
    alone = make_gan("stackgan", num_classes=2, stage1_share=1.0)
    train_gan(alone, x, y, steps=3, **options)
    for part in ("generator", "discriminator"):
        after_one = getattr(alone, part)["stage1"].state_dict()
        after_two = getattr(gan, part)["stage1"].state_dict()
        assert all(torch.equal(after_one[k], after_two[k]) for k in after_one)
    # stage II moved in stage II only
    state = alone.state_dict()
    stage2 = [k for k in init if ".stage2." in k]
    assert all(torch.equal(state[k], init[k]) for k in stage2)
    assert any(not torch.equal(gan.state_dict()[k], init[k]) for k in stage2)


def test_stackgan_stage_routes_data_and_survives_reload():
    gan = make_gan("stackgan", (1, 28, 28))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.arange(4)
    assert gan.current_stage == 1
    assert gan.prepare_real(x).shape == (4, 1, 14, 14)
    assert gan.train_forward(gan.sample_z(4), labels)[0].shape == (4, 1, 14, 14)
    assert gan.discriminate(gan.prepare_real(x), labels)[0].shape == (4,)
    assert gan.sample(2, seed=0).shape == (2, 1, 28, 28)  # always the stage-II output

    gan.train()
    gan.begin_step(5, 10, 0)
    assert gan.current_stage == 2
    assert not gan.generator["stage1"].training and gan.generator["stage2"].training
    assert torch.equal(gan.prepare_real(x), x)
    assert gan.train_forward(gan.sample_z(4), labels)[0].shape == (4, 1, 28, 28)
    assert gan.discriminate(x, labels)[0].shape == (4,)

    clone = GENERATORS.create("stackgan", **gan.config)
    assert clone.current_stage == 1
    clone.load_state_dict(gan.state_dict())
    assert clone.current_stage == 2


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_stackgan_rejects_a_bad_share(share):
    with pytest.raises(UserError):
        make_gan("stackgan", stage1_share=share)
