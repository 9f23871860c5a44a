"""The data every cell sees: one ``DataSplit`` of train and test images, where the data
folder is (``resolve_root``: ``--data-dir`` or $RBG_DATA_DIR) and the stratified cuts that
``rbg run`` makes of it. The dataset plugins (data/) build a DataSplit; the runner and the
kinds use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError

DATA_DIR_ENV = "RBG_DATA_DIR"


@dataclass(frozen=True, eq=False)
class DataSplit:
    """Images (float32 NCHW in [0, 1]) and int64 labels, split into train and test."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...]
    #: the dataset as leaderboards name it where the suite's dataset name does not say what
    #: the images are (an image folder: its content hash); rows of one source rank together
    source: str = ""

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{self.name} {part}: want x (N, C, H, W) and y (N,), "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"{self.name}: train and test images differ in shape")
        if self.num_classes < 2:  # nothing to tell apart, nothing to attack
            raise UserError(
                f"{self.name}: {self.num_classes} class{'' if self.num_classes == 1 else 'es'} "
                f"{list(self.class_names)}; a classifier needs at least 2 classes"
            )
        for part in ("train", "test"):
            y = getattr(self, f"y_{part}")
            if len(y) and not (0 <= int(y.min()) and int(y.max()) < self.num_classes):
                raise UserError(
                    f"{self.name} {part}: labels must lie in 0..{self.num_classes - 1}, "
                    f"found {int(y.min())}..{int(y.max())}"
                )
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    @cached_property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training images."""
        return tuple(float(v) for v in self.x_train.mean(dim=(0, 2, 3)))

    @cached_property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the training images, floored at 1e-3."""
        std = self.x_train.std(dim=(0, 2, 3), correction=0).clamp_min(1e-3)
        return tuple(float(v) for v in std)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the name and all tensors: identifies the split in cell ids."""
        digest = hashlib.sha256(self.name.encode())
        for t in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str((t.dtype, tuple(t.shape))).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def limited(self, *, max_train: int | None, max_test: int | None, seed: int) -> DataSplit:
        """This split cut to at most ``max_train``/``max_test`` samples, class balance kept."""
        x_train, y_train = stratified_subset(self.x_train, self.y_train, max_train, seed=seed)
        x_test, y_test = stratified_subset(self.x_test, self.y_test, max_test, seed=seed + 1)
        return dataclasses.replace(
            self, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
        )


def stratified_subset(x: Tensor, y: Tensor, n: int | None, *, seed: int) -> tuple[Tensor, Tensor]:
    """At most ``n`` samples, drawn in seeded order with classes interleaved in proportion."""
    if n is None or n >= len(y):
        return x, y
    check_limit(n)
    keep = stratified_order(y, seed=seed)[:n]
    return x[keep], y[keep]


def stratified_order(y: Tensor, *, seed: int) -> Tensor:
    """A seeded permutation of all samples with classes interleaved in proportion.

    Any prefix of it is stratified: the first n samples hold each class's share of n.
    """
    labels = y.numpy()
    order = np.random.default_rng(seed).permutation(len(labels))
    # Rank of each sample within its class, as a fraction of that class: sorting
    # by it deals the classes out in proportion, so any prefix is stratified.
    position = np.empty(len(labels))
    for label in np.unique(labels):
        members = order[labels[order] == label]
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    return torch.from_numpy(order[np.argsort(position[order], kind="stable")])


def check_limit(n: object) -> None:
    """Raise UserError unless ``n`` (max_train, max_test) is a positive integer."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"a sample limit must be a positive integer, got {n!r}")


def resolve_root(root: str | Path | None) -> Path | None:
    """The data folder: ``root`` if given, else $RBG_DATA_DIR if set, else None."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None
