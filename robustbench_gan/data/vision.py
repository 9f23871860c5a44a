"""CIFAR-10 and SVHN through torchvision, from a local root (downloaded only on request)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..bounds import Count, Fraction
from ..contract.data import DataSplit, resolve_root
from ..errors import UserError
from ..registry import DATASETS
from .digits import DIGIT_NAMES
from .split import images_to_tensor, labels_to_tensor, official_test_split

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


class BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds: numpy arrays, dicts, lists, bytes, strings
    and numbers. Any other global a pickle names (``os.system``, ``builtins.open``, ...) is an
    UnpicklingError, so no data file can run code."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object named ``module.name``; nothing is imported."""
        found = batch_globals().get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR-10 batch never holds "
                "(refused: a data file may not run code)"
            )
        return found


def latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles (protocol < 3) use it for bytes: latin-1 only,
    strict (``errors`` is ignored)."""
    if not isinstance(text, str) or encoding.replace("_", "-").lower() not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it encodes with {encoding!r}, not latin-1")
    return text.encode("latin-1", errors="strict")


def batch_globals() -> dict[tuple[str, str], Any]:
    """The globals a CIFAR-10 batch pickle may name (numpy 1 and 2 spellings) and what each
    resolves to: numpy's array reconstruction, ``ndarray``, ``dtype`` and bytes."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, wherever it lives
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # its _frombuffer (pickle protocol 5)
    found: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = reconstruct
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        found[(module, "_frombuffer")] = frombuffer
    for module in ("builtins", "__builtin__"):
        found[(module, "bytes")] = bytes
    return found


def unpickle_batch(path: Path) -> Any:
    """The object pickled in ``path``, built by ``BatchUnpickler`` (Python 2 strings read as
    latin-1, as torchvision reads them)."""
    with path.open("rb") as f:
        return BatchUnpickler(f, encoding="latin1").load()


def check_test_batch_md5(path: Path) -> None:
    """Refuse, in one line, a ``test_batch`` that is not the official file (by the md5 that
    torchvision lists for it), before anything unpickles it."""
    from torchvision.datasets import cifar

    md5 = dict(cifar.CIFAR10.test_list)["test_batch"]
    if not cifar.check_integrity(str(path), md5):
        raise UserError(
            f"cifar10: {path} is not the official CIFAR-10 test batch (its md5 is not {md5}); "
            f"get it from {CIFAR10_SITE}"
        )


# what a truncated, corrupt or hostile pickle raises
BATCH_ERRORS = (
    OSError,
    EOFError,
    MemoryError,
    pickle.UnpicklingError,
    AttributeError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """(N, 3, 32, 32) uint8 images and labels from one batch file of the python version,
    unpickled with ``BatchUnpickler`` (refusing anything but arrays and plain data)."""
    try:
        entry = unpickle_batch(path)
        if not isinstance(entry, dict):
            raise TypeError(f"it holds a {type(entry).__name__}, not a dict")
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = list(entry["labels"] if "labels" in entry else entry["fine_labels"])
    except BATCH_ERRORS as exc:
        raise UserError(f"cifar10: cannot read {path}: {one_line(exc)}") from exc
    return images, labels


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def cifar10_parts(
    root: Path | None, *, download: bool, test_only: bool
) -> list[tuple[np.ndarray, Any]]:
    """(images, labels) of the train and test parts, or of the test part alone."""
    from torchvision.datasets import CIFAR10

    test_batch = None if root is None else root / "cifar-10-batches-py" / "test_batch"
    if test_only and test_batch is not None and test_batch.is_file():
        check_test_batch_md5(test_batch)  # only this file's md5, not every batch's
        return [read_cifar_batch(test_batch)]
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

    No data file runs code: the full split is read by torchvision after its md5 check of every
    file; ``test_only`` checks ``test_batch``'s md5 (a file that is not the official one is a
    one-line error) and unpickles it with ``BatchUnpickler``, which builds only arrays and
    plain data.
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
