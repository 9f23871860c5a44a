"""``gan.config`` of every generator family: the factory's call arguments, recorded by
``gans.base.records_config``, rebuild the same GAN through ``GENERATORS.create``."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import robustbench_gan.gans  # noqa: F401  (registers the built-in generators)
from robustbench_gan.gans import GAN
from robustbench_gan.gans.base import records_config
from robustbench_gan.registry import GENERATORS

# every argument of every family away from its default, on small shapes
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "gan": dict(
        in_shape=(1, 6, 5),
        num_classes=3,
        nz=7,
        g_hidden=[16, 8],
        d_hidden=[8],
        pieces=2,
        dropout=0.25,
        input_dropout=0.1,
    ),
    "dcgan": dict(in_shape=(3, 16, 16), num_classes=4, nz=5, ngf=4, ndf=3),
    "cdcgan": dict(in_shape=(1, 8, 8), num_classes=4, nz=5, ngf=4, ndf=3),
    "acgan": dict(in_shape=(1, 8, 8), num_classes=3, nz=5, ngf=4, ndf=3, embed_dim=2, dropout=0.25),
    "progan": dict(
        in_shape=(1, 16, 16), num_classes=2, nz=5, ngf=4, ndf=3, phase_images=10, ema_decay=0.5
    ),
    "biggan": dict(
        in_shape=(1, 8, 8),
        num_classes=3,
        nz=9,
        ngf=4,
        ndf=3,
        shared_dim=5,
        ema_decay=0.5,
        truncation=0.7,
    ),
    "stackgan": dict(
        in_shape=(1, 8, 8),
        num_classes=3,
        nz=5,
        c_dim=3,
        d_cond_dim=2,
        ngf=4,
        ndf=3,
        res_blocks=1,
        kl_weight=0.3,
        stage1_share=0.25,
    ),
    "cyclegan": dict(
        in_shape=(1, 8, 8),
        num_classes=4,
        domain="rotate",
        variant="discogan",
        ngf=4,
        ndf=3,
        n_res=1,
        pool_size=7,
        cycle_weight=3.0,
        identity_weight=0.25,
        weight_clip=0.05,
    ),
    "stargan": dict(
        in_shape=(1, 8, 8),
        num_classes=4,
        domains=["hflip", "invert"],
        ngf=4,
        ndf=3,
        n_res=1,
        cls_weight=0.5,
        rec_weight=2.0,
        g_down=0,
    ),
    "class_means": dict(in_shape=(2, 5, 7), num_classes=3),
}


def build(family: str, seed: int = 0, **kwargs: Any) -> GAN:
    torch.manual_seed(seed)
    return GENERATORS.create(family, **kwargs)


def shapes(gan: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in gan.state_dict().items()]


def outputs(gan: GAN) -> Tensor:
    if gan.translated_domains:  # a translator
        x = torch.rand(3, *gan.out_shape, generator=torch.Generator())
        return torch.cat([gan.translate_to(x, d) for d in gan.translated_domains])
    return gan.sample(3, seed=0)


def test_every_family_has_a_case():
    assert set(GENERATORS.list()) == set(NON_DEFAULT)


@pytest.mark.parametrize("family", sorted(NON_DEFAULT))
def test_cases_move_every_argument_off_its_default(family):
    params = inspect.signature(GENERATORS.get(family)).parameters
    assert set(NON_DEFAULT[family]) == set(params)
    for name, value in NON_DEFAULT[family].items():
        assert params[name].default is inspect.Parameter.empty or value != params[name].default


@pytest.mark.parametrize("family", sorted(NON_DEFAULT))
def test_config_records_every_argument_and_rebuilds(family):
    kwargs = NON_DEFAULT[family]
    gan = build(family, **kwargs)
    assert gan.config == kwargs  # every argument, with the value it was given
    assert isinstance(gan.config["in_shape"], tuple)
    clone = build(family, seed=1, **gan.config)
    assert clone.config == gan.config
    assert shapes(clone) == shapes(gan)
    clone.load_state_dict(gan.state_dict())
    assert torch.equal(outputs(clone), outputs(gan))


@pytest.mark.parametrize("family", sorted(NON_DEFAULT))
def test_config_holds_the_defaults_left_out(family):
    params = inspect.signature(GENERATORS.get(family)).parameters
    in_shape = [*NON_DEFAULT[family]["in_shape"]]  # a list: stored as a tuple
    gan = build(family, in_shape=in_shape)
    assert list(gan.config) == list(params)
    assert gan.config["in_shape"] == tuple(in_shape)
    clone = build(family, **gan.config)
    assert clone.config == gan.config and shapes(clone) == shapes(gan)


def test_cyclegan_config_holds_the_variants_paper_values():
    gan = build("cyclegan", in_shape=(1, 8, 8), variant="dualgan", ngf=4, ndf=4, n_res=1)
    settings = {k: gan.config[k] for k in ("pool_size", "cycle_weight", "identity_weight")}
    assert settings == {"pool_size": 0, "cycle_weight": 100.0, "identity_weight": 0.0}
    assert gan.config["weight_clip"] == 0.01 and isinstance(gan.config["pool_size"], int)
    assert build("cyclegan", **gan.config).config == gan.config
    assert GENERATORS.get("cyclegan").translates_domains


def test_gan_config_stores_hidden_widths_as_int_lists():
    gan = build("gan", in_shape=(1, 4, 4), g_hidden=(8.0,), d_hidden=(4,), pieces=2)
    assert gan.config["g_hidden"] == [8] and gan.config["d_hidden"] == [4]
    assert type(gan.config["g_hidden"][0]) is int


def test_records_config_binds_the_call():
    def factory(*, in_shape, width: int = 3, **extra: Any) -> GAN:
        """A stub factory."""
        return GAN(
            nn.Identity(),
            nn.Identity(),
            nz=1,
            num_classes=2,
            conditional=False,
            out_shape=tuple(in_shape),
        )

    plain = records_config(factory)
    assert plain(in_shape=[1, 2, 2], depth=4).config == {
        "in_shape": (1, 2, 2),
        "width": 3,
        "depth": 4,
    }
    renamed = records_config(normalize=lambda c: {**c, "width": c["width"] * 2})(factory)
    assert renamed(in_shape=(1, 2, 2)).config["width"] == 6
    assert renamed.__name__ == "factory" and renamed.__doc__ == "A stub factory."
    assert inspect.signature(renamed) == inspect.signature(factory)
    with pytest.raises(TypeError):
        plain(width=1)  # the factory's own error for a missing argument
    with pytest.raises(TypeError):
        records_config(lambda *args: None)
