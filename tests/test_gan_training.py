"""The shared GAN loop: losses, options, gradient accumulation, the FID monitor."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustbench_gan.errors import UserError
from robustbench_gan.gans import train_gan
from robustbench_gan.gans.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from robustbench_gan.gans.train import GeneratorAverage, accumulated_update, resolve_config
from robustbench_gan.registry import GENERATORS


def blobs(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(n) % 2
    x = torch.zeros(n, 1, 8, 8)
    x[y == 0, :, 1:4, 1:4] = 1.0
    x[y == 1, :, 4:7, 4:7] = 1.0
    return x, y


def tiny(family: str = "cdcgan"):
    torch.manual_seed(0)
    return GENERATORS.create(family, in_shape=(1, 8, 8), num_classes=2, nz=8, ngf=8, ndf=8)


def test_loss_values_on_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0])
    softplus = nn.functional.softplus
    expected_bce = softplus(-real).mean() + softplus(fake).mean()
    assert torch.allclose(discriminator_loss("nonsaturating", real, fake), expected_bce)
    assert torch.allclose(discriminator_loss("saturating", real, fake), expected_bce)
    hinge = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    assert torch.allclose(discriminator_loss("hinge", real, fake), hinge)
    ls = 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    assert torch.allclose(discriminator_loss("lsgan", real, fake), ls)
    assert torch.allclose(discriminator_loss("wgan_gp", real, fake), fake.mean() - real.mean())
    assert torch.allclose(generator_loss("nonsaturating", fake), softplus(-fake).mean())
    assert torch.allclose(generator_loss("saturating", fake), -softplus(fake).mean())
    assert torch.allclose(generator_loss("hinge", fake), -fake.mean())
    assert torch.allclose(generator_loss("lsgan", fake), 0.5 * (fake - 1).pow(2).mean())


def test_gradient_penalty_of_a_linear_critic():
    """critic(x) = <w, x> has gradient w everywhere, so the penalty is (|w| - 1)^2."""
    w = torch.randn(1, 1, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_reproducibly(loss):
    x, y = blobs()
    runs = [
        train_gan(tiny(), x, y, steps=4, batch_size=16, loss=loss, seed=1, progress=False)
        for _ in range(2)
    ]
    assert runs[0].d_loss == runs[1].d_loss and runs[0].g_loss == runs[1].g_loss
    assert all(math.isfinite(v) for v in runs[0].d_loss + runs[0].g_loss)
    assert runs[0].options["loss"] == loss


def test_options_merge_family_defaults_under_the_suite():
    gan = tiny()
    gan.train_defaults = {"loss": "hinge", "d_steps": 2}
    assert resolve_config(gan, {}).loss == "hinge"
    config = resolve_config(gan, {"loss": "lsgan"})
    assert (config.loss, config.d_steps) == ("lsgan", 2)
    for bad in ({"loss": "nope"}, {"d_steps": 0}, {"accumulate": 0}, {"momentum": 1}):
        with pytest.raises(UserError):
            train_gan(gan, *blobs(), steps=1, progress=False, **bad)


def test_accumulated_update_equals_one_big_batch():
    torch.manual_seed(0)
    data = torch.randn(8, 3)
    big, small = nn.Linear(3, 1), nn.Linear(3, 1)
    small.load_state_dict(big.state_dict())
    opt_big = torch.optim.SGD(big.parameters(), lr=0.1)
    opt_small = torch.optim.SGD(small.parameters(), lr=0.1)
    accumulated_update(opt_big, lambda: big(data).pow(2).mean(), 1)
    halves = iter([data[:4], data[4:]])
    accumulated_update(opt_small, lambda: small(next(halves)).pow(2).mean(), 2)
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_accumulate_doubles_the_images_per_update():
    x, y = blobs()
    seen = []
    gan = tiny()
    gan.begin_step = lambda step, steps, images: seen.append(images)
    train_gan(gan, x, y, steps=3, batch_size=8, accumulate=2, seed=0, progress=False)
    assert seen == [0, 16, 32]


def test_monitor_runs_every_n_steps_and_after_the_last():
    x, y = blobs()
    calls = []

    def monitor(gan):
        calls.append(gan.training)
        return {"fid": float(len(calls))}

    history = train_gan(
        tiny(), x, y, steps=7, batch_size=8, fid_every=3, monitor=monitor, progress=False
    )
    assert [row["step"] for row in history.monitor] == [3, 6, 7]
    assert [row["fid"] for row in history.monitor] == [1.0, 2.0, 3.0]
    plain = train_gan(tiny(), x, y, steps=7, batch_size=8, progress=False)
    with_monitor = train_gan(
        tiny(), x, y, steps=7, batch_size=8, fid_every=3, monitor=monitor, progress=False
    )
    assert plain.g_loss == with_monitor.g_loss  # measuring does not change training


def test_bf16_autocast_trains():
    x, y = blobs()
    history = train_gan(tiny(), x, y, steps=2, batch_size=8, amp=True, progress=False)
    assert all(math.isfinite(v) for v in history.d_loss + history.g_loss)


def test_generator_average_is_measured_and_kept_without_changing_training():
    x, y = blobs()
    samples = []

    def monitor(gan):
        samples.append(gan.sample(16, seed=0))
        return {"fid": 0.0}

    plain = train_gan(tiny("dcgan"), x, None, steps=6, batch_size=8, g_ema=0.9, progress=False)
    gan = tiny("dcgan")
    live = {k: v.clone() for k, v in gan.generator.state_dict().items()}
    measured = train_gan(
        gan, x, None, steps=6, batch_size=8, g_ema=0.9, fid_every=4, monitor=monitor,
        progress=False,
    )  # fmt: skip
    assert plain.g_loss == measured.g_loss  # measuring the average does not change training
    assert len(samples) == 2 and torch.equal(samples[-1], gan.sample(16, seed=0))
    assert any(not torch.equal(live[k], v) for k, v in gan.generator.state_dict().items())
    with pytest.raises(UserError):
        train_gan(tiny("dcgan"), x, None, steps=1, g_ema=1.0, progress=False)


def test_generator_average_warms_up_then_follows_the_decay():
    source = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(source.weight)
    average = GeneratorAverage(source, 0.5, seed=0)
    nn.init.ones_(source.weight)
    average.update(source)  # decay min(0.5, 1/10): 0.1 * 0 + 0.9 * 1
    assert average.network.weight.item() == pytest.approx(0.9)
    average.update(source)  # decay min(0.5, 2/11)
    assert average.network.weight.item() == pytest.approx(0.9 * 2 / 11 + 9 / 11)
    average.updates = 100
    nn.init.zeros_(source.weight)
    before = average.network.weight.item()
    average.update(source)  # decay 0.5
    assert average.network.weight.item() == pytest.approx(before / 2)
    assert not average.network.weight.requires_grad
