"""CycleGAN (and its DualGAN / DiscoGAN variants): nets, the history pool, domains,
unpaired training that lowers the cycle error, translation, metrics hooks and grids."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib import image as mpimg
from sklearn.datasets import load_digits
from torch import Tensor, nn

import robustbench_gan.gans.cyclegan  # noqa: F401
from robustbench_gan.errors import UserError
from robustbench_gan.gans import save_sample_grid, train_gan
from robustbench_gan.gans.cyclegan import CycleGAN, ImagePool
from robustbench_gan.registry import GENERATORS

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
VARIANTS = ["cyclegan", "dualgan", "discogan"]
TINY = dict(ngf=4, ndf=4, n_res=1)


def make(shape=(1, 8, 8), seed: int = 0, **kwargs) -> CycleGAN:
    torch.manual_seed(seed)
    return GENERATORS.create("cyclegan", in_shape=shape, **{**TINY, **kwargs})


def digit_images(n: int = 200) -> tuple[Tensor, Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.images[:n] / 16, dtype=torch.float32)[:, None]
    return x, torch.tensor(digits.target[:n])


def stride2_convs(net: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in net.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.stride == (2, 2)
    ]


# -- architecture -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_nets_translate_shapes(shape):
    gan = make(shape)
    assert (gan.nz, gan.conditional, gan.out_shape) == (0, False, shape)
    assert isinstance(gan.generator, nn.ModuleDict) and set(gan.generator) == {"ab", "ba"}
    assert isinstance(gan.discriminator, nn.ModuleDict) and set(gan.discriminator) == {"a", "b"}
    x = torch.rand(3, *shape) * 2 - 1
    downs = 1 if shape[1] < 16 else 2
    for g in gan.generator.values():
        out = g(x)
        assert out.shape == x.shape and out.abs().max() <= 1
        assert isinstance(g.net[-1], nn.Tanh)
        assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (7, 7) for m in g.modules()) == 2
        convs = stride2_convs(g)
        assert [type(m) for m in convs] == [nn.Conv2d] * downs + [nn.ConvTranspose2d] * downs
    for d in gan.discriminator.values():
        logits = d(x)
        assert logits.shape[:2] == (3, 1) and min(logits.shape[2:]) >= 2  # a map of patches
        assert len(stride2_convs(d)) == downs
        assert not isinstance(d.net[1], nn.InstanceNorm2d)  # no norm on the first layer
    modules = list(gan.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in modules)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in modules)


def test_paper_defaults():
    gan = GENERATORS.create("cyclegan", in_shape=(1, 8, 8))
    assert gan.config["ngf"] == gan.config["ndf"] == 64 and gan.config["n_res"] == 6
    assert (gan.pool_size, gan.cycle_weight, gan.identity_weight) == (50, 10.0, 0.5)
    assert gan.train_defaults == {"loss": "lsgan", "beta1": 0.5}
    assert (gan.reconstruction, gan.optimizer, gan.weight_clip) == ("l1", "adam", 0.0)


def test_variants_share_structure_but_not_losses():
    gans = {v: make(variant=v) for v in VARIANTS}
    shapes = {v: [tuple(p.shape) for p in g.state_dict().values()] for v, g in gans.items()}
    assert shapes["cyclegan"] == shapes["dualgan"] == shapes["discogan"]
    assert [gans[v].train_defaults["loss"] for v in VARIANTS] == [
        "lsgan",
        "wgan_gp",
        "nonsaturating",
    ]
    dual, disco = gans["dualgan"], gans["discogan"]
    assert dual.train_defaults["gp_weight"] == 0 and dual.weight_clip == 0.01  # clipping
    assert (dual.reconstruction, dual.optimizer) == ("l1", "rmsprop")
    assert disco.reconstruction == "l2" and disco.identity_weight == 0 == dual.identity_weight
    assert disco.pool_size == 0 == dual.pool_size

    x, _ = digit_images(64)
    histories = {
        v: train_gan(g, x, None, steps=3, batch_size=8, progress=False) for v, g in gans.items()
    }
    losses = {tuple(h.g_loss) for h in histories.values()}
    assert len(losses) == 3
    assert histories["dualgan"].options["reconstruction"] == "l1"
    assert all(p.abs().max() <= 0.01 for p in dual.discriminator.parameters())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_shape=(1, 6, 6)),
        dict(in_shape=(1, 30, 30)),  # two downsamplings need a side divisible by 4
        dict(in_shape=(1, 8, 16), domain="rotate"),
        dict(in_shape=(1, 8, 8), variant="unit"),
        dict(in_shape=(1, 8, 8), domain="no_such_domain"),
        dict(in_shape=(1, 8, 8), cycle_weight=-1),
    ],
)
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(UserError):
        GENERATORS.create("cyclegan", **kwargs)


# -- the history pool ---------------------------------------------------------------------


def numbered(start: int, n: int) -> Tensor:
    """Images whose every pixel holds their number, so a returned image names itself."""
    return torch.arange(start, start + n, dtype=torch.float32)[:, None, None, None].expand(
        n, 1, 2, 2
    )


def test_pool_fills_then_swaps_half():
    pool, rng = ImagePool(50), torch.Generator().manual_seed(0)
    for start in range(0, 50, 10):  # filling: every fake comes straight back
        batch = numbered(start, 10)
        assert torch.equal(pool.query(batch, rng), batch)
    assert len(pool) == 50
    batch = numbered(50, 4000)
    out = pool.query(batch, rng)
    ids = out[:, 0, 0, 0]
    swapped = ids != batch[:, 0, 0, 0]
    assert abs(swapped.double().mean().item() - 0.5) < 0.03
    assert (ids[swapped] < torch.arange(50, 4050)[swapped]).all()  # only past fakes come back
    assert len(pool) == 50


def test_pool_is_deterministic_with_rng():
    outs = []
    for _ in range(2):
        pool, rng = ImagePool(5), torch.Generator().manual_seed(3)
        outs.append(torch.cat([pool.query(numbered(i * 8, 8), rng) for i in range(4)]))
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(ImagePool(0).query(numbered(0, 3), torch.Generator()), numbered(0, 3))


# -- domains ------------------------------------------------------------------------------


def test_transform_domains():
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(make(domain="invert").domain_b(x, split="test"), 1 - x)
    rotated = make(domain="rotate").domain_b(x, split="train")
    # counter-clockwise: the top-right pixel moves to the top-left
    assert torch.equal(rotated[:, :, 0, 0], x[:, :, 0, -1])
    assert torch.equal(rotated[:, :, -1, 0], x[:, :, 0, 0])
    with pytest.raises(ValueError):
        make().domain_b(x, split="val")


def test_transform_training_is_unpaired():
    x = torch.arange(11.0)[:, None, None, None].expand(11, 1, 8, 8) / 10
    gan = make()
    a, b = gan._training_domains(x, torch.Generator().manual_seed(0))
    a_ids = set(a[:, 0, 0, 0].mul(10).round().int().tolist())
    b_ids = set((1 - b[:, 0, 0, 0]).mul(10).round().int().tolist())
    assert (
        (len(a), len(b)) == (5, 6) and a_ids.isdisjoint(b_ids) and a_ids | b_ids == set(range(11))
    )


def test_dataset_domain_needs_attached_images():
    gan = make(domain="digits", num_classes=10)
    x, y = digit_images(20)
    with pytest.raises(UserError):
        gan.domain_b(x, split="test")
    with pytest.raises(UserError):
        train_gan(gan, x, y, steps=1, progress=False)
    with pytest.raises(UserError):
        gan.attach_domain_b(torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4))
    with pytest.raises(UserError):
        make(domain="invert").attach_domain_b(x, x)
    b_train, b_test = torch.rand(30, 1, 8, 8), torch.rand(7, 1, 8, 8)
    gan.attach_domain_b(b_train, b_test)
    b = gan.domain_b(x, split="test")
    assert b.shape == x.shape and torch.equal(b, gan.domain_b(x, split="test"))
    assert torch.equal(b[:7], b_test) and torch.equal(b[7:14], b_test)
    assert len(gan.state_dict()) == len(make().state_dict())  # not part of the state
    history = train_gan(gan, x, y, steps=2, batch_size=4, progress=False)
    assert len(history.series["cycle_error"]) == 2
    fakes, labels = gan.metric_samples(x, y, seed=0)
    assert fakes.shape == x.shape and labels is None  # B images carry no A classes
    assert make((1, 28, 28), domain="fashion_mnist").domain == "fashion_mnist"


# -- training -----------------------------------------------------------------------------


def invert_error(gan: CycleGAN, x: Tensor) -> float:
    return (gan.translate(x, "ab") - (1 - x)).abs().mean().item()


@pytest.fixture(scope="module")
def trained():
    """The issue's check: a few hundred steps on 200 digits (A = half, B = 1 - other half)."""
    x, y = digit_images(200)
    gan = make(ngf=8, ndf=8, n_res=1, cycle_weight=2.0, identity_weight=0.0)
    before = invert_error(gan, x)
    history = train_gan(gan, x, y, steps=300, batch_size=16, seed=0, progress=False)
    return gan, history, before, x, y


def test_cycle_error_falls_and_is_reported(trained):
    gan, history, _, _, _ = trained
    errors = history.series["cycle_error"]
    assert len(errors) == len(history.d_loss) == len(history.g_loss) == history.steps == 300
    assert all(math.isfinite(v) for v in errors + history.d_loss + history.g_loss)
    early, late = sum(errors[:30]) / 30, sum(errors[-30:]) / 30
    assert late < early / 2
    assert history.options["cycle_weight"] == 2.0 and history.options["loss"] == "lsgan"
    assert history.options["batch_size"] == 16 and history.seconds > 0
    assert not gan.training


def test_translation_learns_the_inversion(trained):
    gan, _, before, x, _ = trained
    assert invert_error(gan, x) < 0.7 * before
    back = gan.translate(1 - x, "ba")
    assert (back - x).abs().mean() < 0.7 * before


def test_training_is_reproducible():
    x, _ = digit_images(40)
    runs = []
    for seed in (3, 3, 4):
        gan = make(seed=1)
        h = train_gan(gan, x, None, steps=4, batch_size=8, seed=seed, progress=False)
        runs.append((h.d_loss, h.g_loss, h.series["cycle_error"]))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_monitor_is_called_every_fid_every_steps():
    x, _ = digit_images(20)
    gan = make()
    seen = []

    def monitor(g):
        seen.append(g.training)
        return {"fid": float(len(seen))}

    h = train_gan(gan, x, None, steps=5, batch_size=4, fid_every=2, monitor=monitor, progress=False)
    assert [row["step"] for row in h.monitor] == [2, 4, 5]
    assert [row["fid"] for row in h.monitor] == [1.0, 2.0, 3.0]


# -- translation, metrics hooks, grid, checkpoints ---------------------------------------


def test_translate_and_no_sampling():
    gan = make((1, 28, 28)).train()
    x = torch.rand(7, 1, 28, 28)
    out = gan.translate(x, "ba", batch_size=3)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert gan.training  # mode restored
    assert torch.allclose(out, gan.translate(x, "ba"), atol=1e-6)  # batching changes nothing
    assert not torch.equal(out, gan.translate(x, "ab"))
    with pytest.raises(ValueError):
        gan.translate(x, "aa")
    with pytest.raises(TypeError, match="translate"):
        gan.sample(4)
    with pytest.raises(TypeError, match="translate"):
        gan.generate(torch.zeros(4, 0))


def test_metric_samples_translate_b_back_to_a():
    gan = make(domain="rotate")
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6)
    fakes, labels = gan.metric_samples(x, y, seed=0)
    assert torch.equal(fakes, gan.translate(torch.rot90(x, 1, dims=(2, 3)), "ba"))
    assert torch.equal(labels, y)  # a class-preserving transform keeps the labels


def test_grid_rows(tmp_path):
    gan = make()
    x = torch.rand(10, 1, 8, 8)
    images, nrow = gan.grid_images(x, per_class=8, n=64, seed=0)
    assert nrow == 8 and images.shape == (40, 1, 8, 8)
    rows = images.reshape(5, 8, 1, 8, 8)
    assert torch.equal(rows[0], x[:8]) and torch.equal(rows[3], 1 - x[:8])
    assert torch.equal(rows[1], gan.translate(x[:8], "ab"))
    assert torch.equal(rows[4], gan.translate(1 - x[:8], "ba"))
    with pytest.raises(ValueError):
        gan.grid_images(None, per_class=8, n=64, seed=0)
    path = save_sample_grid(gan, tmp_path / "grid.png", x=x)
    assert mpimg.imread(path).shape[:2] == (5 * 33 + 1, 8 * 33 + 1)


def test_config_rebuilds_the_same_translator():
    gan = make((3, 32, 32), variant="discogan", domain="rotate")
    clone = GENERATORS.create("cyclegan", **gan.config)
    assert clone.config == gan.config and clone.cycle_weight == 1.0
    clone.load_state_dict(gan.state_dict())
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(clone.translate(x, "ab"), gan.translate(x, "ab"))
