"""CIFAR-10 and SVHN through torchvision, from a local root (downloaded only on request)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..bounds import Count, Fraction
from ..errors import UserError
from ..registry import DATASETS
from .digits import DIGIT_NAMES
from .split import (
    DataSplit,
    images_to_tensor,
    labels_to_tensor,
    official_test_split,
    resolve_root,
)

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


CIFAR10_EXPECTED = "cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta)"
CIFAR10_SITE = "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version)"


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """(N, 3, 32, 32) uint8 images and labels from one batch file of the python version."""
    try:
        with path.open("rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = list(entry["labels"] if "labels" in entry else entry["fine_labels"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"cifar10: cannot read {path}: {exc}") from exc
    return images, labels


def cifar10_parts(
    root: Path | None, *, download: bool, test_only: bool
) -> list[tuple[np.ndarray, Any]]:
    """(images, labels) of the train and test parts, or of the test part alone."""
    from torchvision.datasets import CIFAR10

    test_batch = None if root is None else root / "cifar-10-batches-py" / "test_batch"
    if test_only and test_batch is not None and test_batch.is_file():
        return [read_cifar_batch(test_batch)]  # no need for torchvision's md5 of every batch
    parts = []
    for train in (False,) if test_only else (True, False):
        data = open_torchvision(
            "cifar10",
            lambda r, train=train: CIFAR10(r, train=train, download=download),
            root,
            expected=CIFAR10_EXPECTED,
            site=CIFAR10_SITE,
            download=download,
        )
        parts.append((data.data.transpose(0, 3, 1, 2), data.targets))
    return parts


@DATASETS.register("cifar10")
def cifar10(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
) -> DataSplit:
    """CIFAR-10, official split, (N, 3, 32, 32) in [0, 1]; ``test_fraction`` is ignored.

    Reads ``root/cifar-10-batches-py`` (the python version of the dataset). ``test_only =
    true`` reads only ``test_batch`` and returns its 10,000 images in file order (the first
    ``max_test`` of them; ``max_train`` is ignored) as the test part, the train part being the
    same tensors: for evaluating a pretrained model on the first n official test images.
    """
    parts = cifar10_parts(resolve_root(root), download=download, test_only=test_only)
    if test_only:
        (images, labels), *_ = parts
        x, y = images_to_tensor(images, scale=255.0), labels_to_tensor(np.asarray(labels))
        return official_test_split("cifar10", x, y, CIFAR10_NAMES, max_test=max_test)
    split = uint8_split("cifar10", CIFAR10_NAMES, parts[0], parts[1])
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)


@DATASETS.register("svhn")
def svhn(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
) -> DataSplit:
    """SVHN cropped digits, official train/test split, (N, 3, 32, 32) in [0, 1]; label 0 is digit 0.

    Reads ``root/train_32x32.mat`` and ``root/test_32x32.mat``; ``test_fraction`` is ignored.
    ``test_only = true`` reads only ``test_32x32.mat`` and returns its images in file order
    (the first ``max_test`` of them; ``max_train`` is ignored) as the test part, the train part
    being the same tensors: for evaluating a pretrained model on the first n test images.
    """
    from torchvision.datasets import SVHN

    parts = []
    for part in ("test",) if test_only else ("train", "test"):
        data = open_torchvision(
            "svhn",
            lambda r, part=part: SVHN(r, split=part, download=download),
            resolve_root(root),
            expected="test_32x32.mat" if test_only else "train_32x32.mat and test_32x32.mat",
            site="http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)",
            download=download,
        )
        parts.append((data.data, data.labels))
    if test_only:
        (images, labels), *_ = parts
        x, y = images_to_tensor(images, scale=255.0), labels_to_tensor(np.asarray(labels))
        return official_test_split("svhn", x, y, DIGIT_NAMES, max_test=max_test)
    split = uint8_split("svhn", DIGIT_NAMES, parts[0], parts[1])
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)
