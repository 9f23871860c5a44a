"""The training settings a suite holds: a classifier's (``TrainConfig``: the ``[train]``
table and per-target overrides) and a GAN's (``GanTrainConfig``: a generator's ``train``
table over its family's defaults). The suite reader validates them; models/train.py and
gans/train.py train with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GAN_LOSSES = ("nonsaturating", "saturating", "hinge", "lsgan", "wgan_gp")  # gans/losses.py

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; a suite's [train] table and per-target overrides."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")


@dataclass(frozen=True)
class GanTrainConfig:
    """Training options; ``accumulate`` minibatches of ``batch_size`` make one update
    (effective batch ``batch_size * accumulate``), ``fid_every`` > 0 calls the monitor
    (FID on the judge's features) every that many steps and after the last."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    d_lr: float | None = None  # the discriminator's learning rate; None: lr
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    loss: str = "nonsaturating"
    gp_weight: float = 10.0  # wgan_gp only
    drift: float = 0.0  # wgan_gp only: weight of E[D(x)^2]
    accumulate: int = 1
    fid_every: int = 0
    g_ema: float = 0.0  # decay of a moving average of G's weights; 0: off (module docstring)

    def __post_init__(self) -> None:
        if self.loss not in GAN_LOSSES:
            raise ValueError(
                f"unknown GAN loss {self.loss!r}; choose one of {', '.join(GAN_LOSSES)}"
            )
        for name in ("steps", "batch_size", "d_steps", "accumulate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fid_every < 0 or self.lr <= 0 or (self.d_lr is not None and self.d_lr <= 0):
            raise ValueError("fid_every must be >= 0 and learning rates > 0")
        if not 0 <= self.g_ema < 1:
            raise ValueError(f"g_ema must be in [0, 1), got {self.g_ema}")
