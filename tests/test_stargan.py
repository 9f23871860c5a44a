"""StarGAN: one translator for several domains -- nets and their heads, the one-hot tiling,
losses, unpaired multi-domain training that lowers the reconstruction error, translation,
metric hooks, grid, the suite entries and the per-domain rows of a tiny run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn

import robustbench_gan.gans  # noqa: F401  (registers the built-in generators)
from robustbench_gan.cli import main
from robustbench_gan.contract.configs import GanTrainConfig
from robustbench_gan.errors import UserError
from robustbench_gan.gans import save_sample_grid, train_gan
from robustbench_gan.gans.stargan import SOURCE, StarGAN
from robustbench_gan.gans.stargan_nets import tile_domains
from robustbench_gan.gans.stargan_training import (
    PAPER_TRAINING,
    critic_objective,
    generator_objective,
    random_targets,
)
from robustbench_gan.gans.train import resolve_config
from robustbench_gan.gans.translation_domains import INVERSES, TRANSFORMS
from robustbench_gan.registry import GENERATORS
from robustbench_gan.runner.run import run_suite
from robustbench_gan.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["invert", "rotate", "hflip"]
TINY = dict(ngf=4, ndf=4, n_res=1, domains=DOMAINS)


def make(shape=(1, 8, 8), seed: int = 0, **kwargs) -> StarGAN:
    torch.manual_seed(seed)
    return GENERATORS.create("stargan", in_shape=shape, **{**TINY, **kwargs})


def digit_images(n: int = 200) -> tuple[Tensor, Tensor]:
    digits = load_digits()
    x = torch.tensor(digits.images[:n] / 16, dtype=torch.float32)[:, None]
    return x, torch.tensor(digits.target[:n])


# -- architecture -------------------------------------------------------------------------


def test_one_hot_is_tiled_as_channels():
    x = torch.zeros(2, 1, 8, 6)
    onehot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    tiled = tile_domains(onehot, x)
    assert tiled.shape == (2, 3, 8, 6)
    assert torch.equal(tiled[0, 1], torch.ones(8, 6)) and tiled[0, [0, 2]].abs().sum() == 0
    assert torch.equal(tiled[1, 2], torch.ones(8, 6))
    with pytest.raises(ValueError):
        tile_domains(onehot[:1], x)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_nets_and_heads(shape):
    gan = make(shape)
    assert (gan.nz, gan.conditional, gan.out_shape, gan.n_domains) == (0, False, shape, 4)
    assert gan.translated_domains == tuple(DOMAINS)
    x = torch.rand(3, *shape) * 2 - 1
    first = gan.generator.net[0]
    assert first.in_channels == shape[0] + 4  # the image plus one channel per domain
    out = gan.generator(x, gan.onehot(torch.tensor([0, 1, 3])))
    assert out.shape == x.shape and out.abs().max() <= 1
    src, cls = gan.discriminator(x)
    assert src.shape[:2] == (3, 1) and min(src.shape[2:]) >= 1  # a map of patch values
    assert cls.shape == (3, 4)  # one logit per domain, the suite's images included
    modules = list(gan.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) and m.affine for m in modules)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in gan.discriminator.modules())


@pytest.mark.parametrize("g_down, strided", [(None, 1), (0, 0), (2, 2)])
def test_generator_downsamplings(g_down, strided):
    """``g_down`` sets G's stride-2 layers (None: by image size, once for 8x8)."""
    gan = make(g_down=g_down)
    convs = [m for m in gan.generator.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(convs) == strided and gan.config["g_down"] == g_down
    x = torch.rand(2, 1, 8, 8)
    assert gan.translate(x, "invert").shape == x.shape


def test_the_label_changes_the_translation():
    gan = make()
    x = torch.rand(4, 1, 8, 8)
    outs = {d: gan.translate(x, d) for d in [SOURCE, *DOMAINS]}
    assert all(o.shape == x.shape and 0 <= o.min() and o.max() <= 1 for o in outs.values())
    assert not torch.equal(outs["invert"], outs["rotate"])
    assert torch.equal(gan.translate_to(x, "hflip"), outs["hflip"])


def test_paper_defaults():
    gan = GENERATORS.create("stargan", in_shape=(1, 8, 8))
    assert gan.config["ngf"] == gan.config["ndf"] == 64 and gan.config["n_res"] == 6
    assert (gan.cls_weight, gan.rec_weight, gan.config["g_down"]) == (1.0, 10.0, None)
    assert gan.train_defaults == PAPER_TRAINING
    c = resolve_config(gan, {})
    assert (c.loss, c.gp_weight, c.d_steps, c.lr, c.beta1, c.beta2, c.batch_size) == (
        "wgan_gp", 10.0, 5, 1e-4, 0.5, 0.999, 16,
    )  # fmt: skip
    assert GENERATORS.get("stargan").translates_domains


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_shape=(1, 6, 6)),
        dict(in_shape=(1, 8, 16), domains=["rotate"]),
        dict(in_shape=(1, 8, 8), domains=[]),
        dict(in_shape=(1, 8, 8), domains=["invert", "invert"]),
        dict(in_shape=(1, 8, 8), domains=["original"]),
        dict(in_shape=(1, 8, 8), domains=["no_such_domain"]),
        dict(in_shape=(1, 8, 8), rec_weight=-1),
        dict(in_shape=(1, 8, 8), g_down=-1),
        dict(in_shape=(1, 8, 8), g_down=4),  # 8 does not divide by 16
        dict(in_shape=(1, 8, 8), g_down=1.5),
    ],
)
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(UserError):
        GENERATORS.create("stargan", **kwargs)


def test_config_rebuilds_the_same_translator():
    gan = make(domains="invert")
    assert gan.config["domains"] == ["invert"] and gan.translated_domains == ("invert",)
    gan = make((3, 32, 32))
    clone = GENERATORS.create("stargan", **gan.config)
    assert clone.config == gan.config
    clone.load_state_dict(gan.state_dict())
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(clone.translate(x, "rotate"), gan.translate(x, "rotate"))


# -- domains and losses ---------------------------------------------------------------------


def test_new_transforms_and_their_inverses():
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(TRANSFORMS["hflip"](x)[..., 0], x[..., -1])
    shifted = TRANSFORMS["shift"](x)
    assert torch.equal(shifted[..., 1:, 1:], x[..., :-1, :-1]) and shifted[..., 0, :].sum() == 0
    blurred = TRANSFORMS["blur"](torch.ones(1, 1, 8, 8))
    assert torch.allclose(blurred, torch.ones(1, 1, 8, 8))  # edges average inside pixels only
    for name, undo in INVERSES.items():
        assert torch.equal(undo(TRANSFORMS[name](x)), x), name


def test_training_is_unpaired_across_domains():
    x = torch.arange(40.0)[:, None, None, None].expand(40, 1, 8, 8) / 40
    gan = make(domains=["invert", "hflip", "rotate"])
    images, labels = gan.training_domains(x, torch.Generator().manual_seed(0))
    assert len(images) == 40 and torch.equal(torch.bincount(labels), torch.tensor([10] * 4))
    ids = images[:, 0, 0, 0].clone()
    ids[labels == 1] = 1 - ids[labels == 1]  # undo the inversion
    assert sorted(ids.mul(40).round().int().tolist()) == list(range(40))  # each image once
    targets = random_targets(labels, 4, torch.Generator().manual_seed(1))
    assert (targets != labels).all() and targets.max() < 4


def test_losses_are_finite_and_use_the_gradient_penalty():
    gan = make()
    x, _ = digit_images(16)
    real = x * 2 - 1
    source, target = torch.zeros(16, dtype=torch.long), torch.arange(16) % 3 + 1
    rng = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = GanTrainConfig(loss="wgan_gp", gp_weight=0.0)
    penalised = GanTrainConfig(loss="wgan_gp", gp_weight=10.0)
    d0 = critic_objective(gan, real, source, target, plain, rng(), False)
    d10 = critic_objective(gan, real, source, target, penalised, rng(), False)
    assert math.isfinite(d0.item()) and d10.item() > d0.item()  # the penalty is > 0 at init
    d10.backward()
    assert all(p.grad is not None for p in gan.discriminator.parameters())
    g, error = generator_objective(gan, real, source, target, "wgan_gp", False)
    assert math.isfinite(g.item()) and 0 < error < 1
    g.backward()
    assert all(p.grad is not None for p in gan.generator.parameters())


# -- training -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    x, y = digit_images(120)
    gan = make(ngf=8, ndf=8, domains=["invert", "blur", "shift"])
    history = train_gan(
        gan, x, y, steps=60, batch_size=16, lr=1e-3, d_steps=1, seed=0, progress=False
    )
    return gan, history, x, y


def test_reconstruction_error_falls(trained):
    gan, history, _, _ = trained
    errors = history.series["cycle_error"]
    assert len(errors) == len(history.d_loss) == len(history.g_loss) == 60
    assert all(math.isfinite(v) for v in errors + history.d_loss + history.g_loss)
    assert sum(errors[-10:]) / 10 < 0.7 * sum(errors[:10]) / 10
    assert history.options["domains"] == ["invert", "blur", "shift"]
    assert history.options["rec_weight"] == 10.0 and history.options["loss"] == "wgan_gp"
    assert not gan.training


def test_metric_samples_and_grid(trained, tmp_path):
    gan, _, x, y = trained
    fakes, labels = gan.metric_samples(x[:9], y[:9], seed=0, domain="blur")
    assert torch.equal(fakes, gan.translate(TRANSFORMS["blur"](x[:9]), SOURCE))
    assert torch.equal(labels, y[:9])
    pooled, _ = gan.metric_samples(x[:9], y[:9], seed=0)  # image j from domain j mod 3
    one = lambda d, i: gan.translate(TRANSFORMS[d](x[i : i + 1]), SOURCE)[0]  # noqa: E731
    assert torch.allclose(pooled[1], one("blur", 1), atol=1e-6)  # batching changes nothing
    assert torch.allclose(pooled[5], one("shift", 5), atol=1e-6)
    images, nrow = gan.grid_images(x, per_class=8, n=64, seed=0)
    assert nrow == 8 and images.shape == (32, 1, 8, 8)  # real, then one row per domain
    assert torch.equal(images[:8], x[:8])
    assert torch.equal(images[16:24], gan.translate(x[:8], "blur"))
    assert save_sample_grid(gan, tmp_path / "grid.png", x=x).exists()
    with pytest.raises(TypeError, match="translate"):
        gan.sample(3)
    with pytest.raises(ValueError):
        gan.translate(x, "hflip")  # not one of its domains


def test_dataset_domain_needs_attached_images():
    gan = make(domains=["invert", "digits"], num_classes=10)
    x, y = digit_images(30)
    assert not gan.is_transform_domain("digits") and gan.is_transform_domain("invert")
    with pytest.raises(UserError):
        train_gan(gan, x, y, steps=1, progress=False)
    gan.attach_domain_images("digits", torch.rand(12, 1, 8, 8), torch.rand(5, 1, 8, 8))
    images, labels = gan.training_domains(x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(labels), torch.tensor([15, 15, 12]))
    history = train_gan(gan, x, y, steps=2, batch_size=4, d_steps=1, progress=False)
    assert len(history.series["cycle_error"]) == 2
    _, labels = gan.metric_samples(x, y, seed=0)
    assert labels is None  # a dataset's images carry no classes of the suite


# -- the registry, the suite and a tiny run --------------------------------------------------


def test_listed_and_the_digits_gans_suite_validates(capsys):
    assert main(["list", "generators"]) == 0
    assert "stargan" in capsys.readouterr().out
    suite = load_suite(ROOT / "suites" / "digits-gans.toml")
    star = [g for g in suite.generators if g.name == "stargan"]
    assert len(star) == 1 and len(star[0].params["domains"]) >= 3
    cycle = {g.params.get("domain", "invert") for g in suite.generators if g.name == "cyclegan"}
    assert set(star[0].params["domains"]) <= cycle  # one CycleGAN per StarGAN domain


TINY_SUITE = """
name = "stars"
seed = 0
[dataset]
name = "digits"
max_train = 120
max_test = 30
[train]
epochs = 1
[eval]
eps = [0]
[[targets]]
name = "small_cnn"
width = 4
[[generators]]
name = "stargan"
domains = ["invert", "rotate", "hflip"]
ngf = 4
ndf = 4
n_res = 1
train = { steps = 4, batch_size = 8, d_steps = 1, fid_every = 2 }
[[generators]]
name = "cyclegan"
label = "cyclegan_rotate"
domain = "rotate"
ngf = 4
ndf = 4
n_res = 1
train = { steps = 2, batch_size = 8 }
[gan_metrics]
judge = "small_cnn"
n = 30
[[attacks]]
name = "fgsm"
"""


def test_tiny_run_has_rows_per_domain(tmp_path):
    (tmp_path / "stars.toml").write_text(TINY_SUITE)
    out = tmp_path / "out"
    run_suite(tmp_path / "stars.toml", out=out, cache_dir=tmp_path / "cache", progress=False)
    shift = pd.read_csv(out / "domain_shift.csv")
    star = shift[shift["generator"] == "stargan"]
    assert list(star["domain"]) == DOMAINS
    assert star["translated_acc"].between(0, 1).all() and star["transformed_acc"].notna().all()
    assert list(shift.loc[shift["generator"] == "cyclegan_rotate", "domain"]) == ["rotate"]
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False, na_values=[""])
    domain_rows = board[board["norm"] == "domain"]
    assert sorted(domain_rows["attack"]) == sorted(
        ["cyclegan_rotate", *(f"stargan:{d}" for d in DOMAINS)]
    )
    gan = pd.read_csv(out / "gan.csv")
    rows = gan[gan["generator"] == "stargan"]
    assert list(rows["domain"]) == DOMAINS
    for col in ("label_fidelity", "domain_accuracy", "true_domain_accuracy", "g_params"):
        assert rows[col].notna().all(), col
    assert rows["label_fidelity_forward"].notna().all()  # every domain here is invertible
    cyc = gan.set_index("generator").loc["cyclegan_rotate"]
    assert cyc["domain"] == "rotate" and cyc["g_params"] > 0 and 0 <= cyc["domain_accuracy"] <= 1
    assert math.isnan(gan.set_index("generator").loc["baseline", "domain_accuracy"])
    curves = pd.read_csv(out / "gan_curves.csv")
    assert curves.loc[curves["generator"] == "stargan", "cycle_error"].notna().all()
    assert (out / "plots" / "gan_samples_stargan.png").exists()
    assert "## Translators by domain" in (out / "report.md").read_text()
