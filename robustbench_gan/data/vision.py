"""CIFAR-10 and SVHN through torchvision, from a local root (downloaded only on request)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..registry import DATASETS
from .digits import DIGIT_NAMES
from .split import DataSplit, images_to_tensor, labels_to_tensor, resolve_root

CIFAR10_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def open_torchvision(
    name: str,
    build: Callable[[str], Any],
    root: Path | None,
    *,
    expected: str,
    site: str,
    download: bool,
) -> Any:
    """``build(root)``, turning torchvision's missing-data errors into one-line UserErrors."""
    how = f"pass --data-dir or set RBG_DATA_DIR to the folder holding it (get it from {site})" + (
        ""
        if download
        else "; or set download = true in the suite's [dataset] section to let torchvision fetch it"
    )
    if root is None:
        raise UserError(f"{name}: no data folder was given to look for {expected}; {how}")
    try:
        return build(str(root))
    except RuntimeError as exc:
        if "not found" not in str(exc).lower():
            raise
        raise UserError(f"{name}: {expected} not found or corrupt in {root}; {how}") from exc
    except OSError as exc:  # a failed download
        reason = " ".join(str(exc).split())
        raise UserError(f"{name}: could not read or download into {root}: {reason}") from exc


def uint8_split(
    name: str,
    class_names: tuple[str, ...],
    train: tuple[np.ndarray, Any],
    test: tuple[np.ndarray, Any],
) -> DataSplit:
    """A DataSplit from uint8 NCHW images and integer labels for train and test."""
    tensors = []
    for images, labels in (train, test):
        tensors += [images_to_tensor(images, scale=255.0), labels_to_tensor(np.asarray(labels))]
    return DataSplit(name, *tensors, len(class_names), class_names)


@DATASETS.register("cifar10")
def cifar10(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    download: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
) -> DataSplit:
    """CIFAR-10, official split, (N, 3, 32, 32) in [0, 1]; ``test_fraction`` is ignored.

    Reads ``root/cifar-10-batches-py`` (the python version of the dataset).
    """
    from torchvision.datasets import CIFAR10

    parts = []
    for train in (True, False):
        data = open_torchvision(
            "cifar10",
            lambda r, train=train: CIFAR10(r, train=train, download=download),
            resolve_root(root),
            expected="cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta)",
            site="https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version)",
            download=download,
        )
        parts.append((data.data.transpose(0, 3, 1, 2), data.targets))
    split = uint8_split("cifar10", CIFAR10_NAMES, parts[0], parts[1])
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)


@DATASETS.register("svhn")
def svhn(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    download: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
) -> DataSplit:
    """SVHN cropped digits, official train/test split, (N, 3, 32, 32) in [0, 1]; label 0 is digit 0.

    Reads ``root/train_32x32.mat`` and ``root/test_32x32.mat``; ``test_fraction`` is ignored.
    """
    from torchvision.datasets import SVHN

    parts = []
    for part in ("train", "test"):
        data = open_torchvision(
            "svhn",
            lambda r, part=part: SVHN(r, split=part, download=download),
            resolve_root(root),
            expected="train_32x32.mat and test_32x32.mat",
            site="http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)",
            download=download,
        )
        parts.append((data.data, data.labels))
    split = uint8_split("svhn", DIGIT_NAMES, parts[0], parts[1])
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)
