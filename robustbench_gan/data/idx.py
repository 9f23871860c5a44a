"""MNIST and Fashion-MNIST from IDX files (plain or gzipped) under a local folder."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bounds import Count, Fraction
from ..contract.data import DataSplit, resolve_root
from ..errors import UserError
from ..registry import DATASETS
from .digits import DIGIT_NAMES
from .split import images_to_tensor, labels_to_tensor, official_test_split, stratified_split

# IDX type codes (third magic byte) -> big-endian numpy dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped when the name ends in .gz)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) != header + int(np.prod(dims)) * dtype.itemsize:
        raise UserError(
            f"{path} is truncated or corrupt: header says shape {dims}, size does not match"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


@dataclass(frozen=True)
class IdxSource:
    """Where one IDX dataset may lie and how to get it."""

    name: str
    subfolders: tuple[str, ...]  # tried under root before root itself
    torchvision_class: str
    class_names: tuple[str, ...]
    site: str

    def candidate_folders(self, root: Path) -> list[Path]:
        return [root / sub for sub in self.subfolders] + [root]


MNIST = IdxSource(
    "mnist",
    ("mnist", "MNIST/raw"),
    "MNIST",
    DIGIT_NAMES,
    "the MNIST site (https://ossci-datasets.s3.amazonaws.com/mnist/)",
)
FASHION_MNIST = IdxSource(
    "fashion_mnist",
    ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"),
    "FashionMNIST",
    (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "the Fashion-MNIST repository (https://github.com/zalandoresearch/fashion-mnist)",
)


def find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists first."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def find_pair(folder: Path, stems: tuple[str, str]) -> tuple[Path, Path] | None:
    """The images and labels files named by ``stems`` in ``folder``, if both exist."""
    images, labels = (find_file(folder, stem) for stem in stems)
    return (images, labels) if images and labels else None


def read_pair(files: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1, H, W) images and (N,) labels from an IDX images/labels pair."""
    images, labels = read_idx(files[0]), read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(
            f"{files[0]} and {files[1]} do not match: images {images.shape}, labels {labels.shape}"
        )
    return images[:, None], labels


def missing_data_error(source: IdxSource, root: Path | None, download: bool) -> UserError:
    wanted = ", ".join(f"{stem}[.gz]" for stem in TEST_FILES + TRAIN_FILES)
    where = (
        "no data folder was given"
        if root is None
        else "none found in " + ", ".join(str(f) for f in source.candidate_folders(root))
    )
    fetch = (
        ""
        if download
        else "; or set download = true in the suite's [dataset] section to let torchvision fetch them"
    )
    return UserError(
        f"{source.name}: looked for {wanted} (the t10k pair is enough; the train pair adds the official split) "
        f"but {where}; pass --data-dir or set RBG_DATA_DIR to a folder holding the IDX files from {source.site}{fetch}"
    )


def fetch_with_torchvision(source: IdxSource, root: Path, *, download: bool) -> None:
    """Let torchvision download the raw IDX files into ``root/<Class>/raw``, only when the
    user opted in (``download = true`` in the suite)."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, source.torchvision_class)
    try:
        dataset_class(str(root), train=True, download=download)
    except (RuntimeError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise UserError(f"{source.name}: download into {root} failed: {reason}") from exc


def locate(
    source: IdxSource, root: Path | None, download: bool
) -> tuple[tuple[Path, Path], tuple[Path, Path] | None]:
    """The (test, train or None) file pairs of the first candidate folder holding the t10k pair.

    Downloads through torchvision first when nothing is found and ``download`` is set.
    """
    if root is not None:
        for folder in source.candidate_folders(root):
            test_files = find_pair(folder, TEST_FILES)
            if test_files:
                return test_files, find_pair(folder, TRAIN_FILES)
        if download:
            fetch_with_torchvision(source, root, download=download)
            return locate(source, root, download=False)
    raise missing_data_error(source, root, download)


def load_idx_dataset(
    source: IdxSource,
    *,
    root: str | Path | None,
    seed: int,
    test_fraction: float,
    download: bool,
    max_train: int | None,
    max_test: int | None,
    test_only: bool = False,
) -> DataSplit:
    """Official split when train and test files are present, else a seeded split of the test files.

    With ``test_only`` only the t10k pair is read: all of it, in file order, is the test part
    (and the train part), cut to its first ``max_test`` images.
    """
    test_files, train_files = locate(source, resolve_root(root), download)
    x_test, y_test = read_pair(test_files)
    x = images_to_tensor(x_test, scale=255.0, source=test_files[0])
    y = labels_to_tensor(y_test)
    if test_only:
        return official_test_split(source.name, x, y, source.class_names, max_test=max_test)
    if train_files is None:
        parts = stratified_split(x, y, test_fraction=test_fraction, seed=seed)
    else:
        x_train, y_train = read_pair(train_files)
        x_train_t = images_to_tensor(x_train, scale=255.0, source=train_files[0])
        parts = (x_train_t, labels_to_tensor(y_train), x, y)
    split = DataSplit(source.name, *parts, len(source.class_names), source.class_names)
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)


@DATASETS.register("mnist")
def mnist(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
) -> DataSplit:
    """MNIST as (N, 1, 28, 28) in [0, 1] from IDX files under ``root`` (or $RBG_DATA_DIR).

    The train and t10k pairs give the official split; the t10k pair alone is split stratified
    with ``seed`` and ``test_fraction``. ``test_only = true`` reads only the t10k pair and
    returns its images in file order (the first ``max_test`` of them; ``max_train`` and
    ``test_fraction`` are ignored) as the test part, the train part being the same tensors:
    for evaluating a pretrained model on the first n official test images.
    """
    return load_idx_dataset(
        MNIST,
        root=root,
        seed=seed,
        test_fraction=test_fraction,
        download=download,
        max_train=max_train,
        max_test=max_test,
        test_only=test_only,
    )


@DATASETS.register("fashion_mnist")
def fashion_mnist(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
) -> DataSplit:
    """Fashion-MNIST as (N, 1, 28, 28) in [0, 1] from IDX files under ``root`` (or $RBG_DATA_DIR).

    The train and t10k pairs give the official split; the t10k pair alone is split stratified
    with ``seed`` and ``test_fraction``. ``test_only = true`` reads only the t10k pair and
    returns its images in file order (the first ``max_test`` of them; ``max_train`` and
    ``test_fraction`` are ignored) as the test part, the train part being the same tensors:
    for evaluating a pretrained model on the first n official test images.
    """
    return load_idx_dataset(
        FASHION_MNIST,
        root=root,
        seed=seed,
        test_fraction=test_fraction,
        download=download,
        max_train=max_train,
        max_test=max_test,
        test_only=test_only,
    )
