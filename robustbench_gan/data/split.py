"""The train/test split every stage consumes, and helpers the loaders share."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from ..contract.data import (
    DataSplit,
    check_limit,
)
from ..errors import UserError


def stratified_split(
    x: Tensor, y: Tensor, *, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Seeded, stratified shuffle split into (x_train, y_train, x_test, y_test)."""
    check_test_fraction(test_fraction)
    index = np.arange(len(y))
    try:
        train_idx, test_idx = train_test_split(
            index,
            test_size=test_fraction,
            random_state=seed % 2**32,
            shuffle=True,
            stratify=y.numpy(),
        )
    except ValueError as exc:  # too few samples per class for the fraction asked
        raise UserError(
            f"cannot split {len(y)} samples with test_fraction={test_fraction}: {exc}"
        ) from exc
    train, test = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return x[train], y[train], x[test], y[test]


def official_test_split(
    name: str,
    x: Tensor,
    y: Tensor,
    class_names: tuple[str, ...],
    *,
    max_test: int | None,
    source: str = "",
) -> DataSplit:
    """The official test images in file order, cut to the first ``max_test``, as both parts.

    Nothing trains on such a split (``test_only = true``): it evaluates pretrained models on
    the first n points of the official test set, as RobustBench does.
    """
    if max_test is not None:
        check_limit(max_test)
        x, y = x[:max_test], y[:max_test]
    return DataSplit(name, x, y, x, y, len(class_names), class_names, source)


def check_test_fraction(test_fraction: float) -> None:
    """Raise UserError unless 0 < test_fraction < 1."""
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not 0 < test_fraction < 1
    ):
        raise UserError(
            f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}"
        )


def images_to_tensor(images: np.ndarray, *, scale: float, source: object = "images") -> Tensor:
    """uint8 (or numeric) NCHW array to float32 in [0, 1], dividing by ``scale``.

    Pixels that are not finite or fall outside [0, ``scale``] (a float file holding NaN, or
    values on another scale) are a UserError naming ``source`` (the file they came from).
    """
    x = torch.from_numpy(np.array(images, dtype=np.float32, order="C"))
    if images.dtype != np.uint8 and x.numel():
        if not torch.isfinite(x).all():
            raise UserError(f"{source}: pixel values must be finite (found NaN or inf)")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > scale:
            raise UserError(
                f"{source}: pixel values must lie in [0, {scale:g}], found [{low:g}, {high:g}]"
            )
    return x.div_(scale)


def labels_to_tensor(labels: np.ndarray) -> Tensor:
    """Integer array to an int64 tensor."""
    return torch.from_numpy(np.asarray(labels).astype(np.int64))
