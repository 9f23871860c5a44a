"""test_only = true: the official test split in file order, first max_test, train part = test part."""

from __future__ import annotations

import gzip
import inspect
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_gan.errors import UserError
from robustbench_gan.registry import DATASETS

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_idx_pair(folder: Path, stems: tuple[str, str], n: int, seed: int) -> tuple:
    """n random 28x28 images with labels in no particular order; returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    write_idx(folder / f"{stems[0]}.gz", images)
    write_idx(folder / f"{stems[1]}.gz", labels)
    return images, labels


def assert_test_only(split, images: np.ndarray, labels, n: int) -> None:
    """The split's test part is the first n images and labels, in order; train is test."""
    assert split.x_train is split.x_test and split.y_train is split.y_test
    assert len(split.x_test) == n and split.x_test.dtype == torch.float32
    want = torch.from_numpy(np.asarray(images[:n])).float().reshape(split.x_test.shape) / 255
    torch.testing.assert_close(split.x_test, want)
    assert split.y_test.tolist() == [int(v) for v in labels[:n]]


@pytest.mark.parametrize(
    "name", ["mnist", "fashion_mnist", "cifar10", "svhn", "digits", "imagefolder"]
)
def test_every_loader_with_a_test_split_takes_test_only(name: str) -> None:
    parameter = inspect.signature(DATASETS.get(name)).parameters["test_only"]
    assert parameter.default is False
    assert "test_only" in (DATASETS.get(name).__doc__ or "")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_test_only_reads_t10k_in_file_order(tmp_path: Path, name: str) -> None:
    images, labels = write_idx_pair(tmp_path, TEST_FILES, 30, seed=1)
    write_idx_pair(tmp_path, TRAIN_FILES, 50, seed=2)
    assert_test_only(DATASETS.create(name, root=tmp_path, test_only=True), images, labels, 30)
    limited = DATASETS.create(name, root=tmp_path, test_only=True, max_test=7, max_train=3)
    assert_test_only(limited, images, labels, 7)
    assert DATASETS.create(name, root=tmp_path).x_train.shape[0] == 50  # official split as before


def test_mnist_test_only_never_reads_the_train_pair(tmp_path: Path) -> None:
    images, labels = write_idx_pair(tmp_path, TEST_FILES, 12, seed=3)
    (tmp_path / f"{TRAIN_FILES[0]}.gz").write_bytes(b"broken")
    (tmp_path / f"{TRAIN_FILES[1]}.gz").write_bytes(b"broken")
    with pytest.raises(UserError):
        DATASETS.create("mnist", root=tmp_path)
    assert_test_only(DATASETS.create("mnist", root=tmp_path, test_only=True), images, labels, 12)


def test_mnist_test_only_with_only_t10k_uses_all_of_it(tmp_path: Path) -> None:
    images, labels = write_idx_pair(tmp_path / "mnist", TEST_FILES, 40, seed=4)
    split = DATASETS.create("mnist", root=tmp_path, test_only=True, test_fraction=0.5)
    assert_test_only(split, images, labels, 40)
    assert len(DATASETS.create("mnist", root=tmp_path, test_fraction=0.5).x_test) == 20


def test_cifar10_test_only_reads_test_batch_alone(tmp_path: Path, fake_cifar10) -> None:
    fake_cifar10(tmp_path, per_batch=20)
    folder = tmp_path / "cifar-10-batches-py"
    batch = pickle.loads((folder / "test_batch").read_bytes())
    images, labels = batch["data"].reshape(-1, 3, 32, 32), batch["labels"]
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).unlink()
    split = DATASETS.create("cifar10", root=tmp_path, test_only=True)
    assert split.shape == (3, 32, 32) and split.class_names[0] == "airplane"
    assert_test_only(split, images, labels, 20)
    assert_test_only(
        DATASETS.create("cifar10", root=tmp_path, test_only=True, max_test=5), images, labels, 5
    )
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        DATASETS.create("cifar10", root=tmp_path)


def test_cifar10_test_only_without_the_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        DATASETS.create("cifar10", root=tmp_path, test_only=True)
    assert "\n" not in str(info.value) and "cifar-10-batches-py" in str(info.value)


def test_svhn_test_only_reads_the_test_mat_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scipy.io
    import torchvision.datasets.svhn

    x = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3, 9), dtype=np.uint8)
    y = (np.arange(9)[::-1] % 10 + 1).reshape(9, 1)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", lambda *args, **kwargs: True)
    split = DATASETS.create("svhn", root=tmp_path, test_only=True, max_test=6)
    assert_test_only(split, x.transpose(3, 2, 0, 1), y[:, 0] % 10, 6)


def test_digits_test_only_is_the_usual_test_part_in_array_order() -> None:
    from sklearn.datasets import load_digits

    usual = DATASETS.create("digits", seed=5, test_fraction=0.25)
    split = DATASETS.create("digits", seed=5, test_fraction=0.25, test_only=True)
    assert split.x_train is split.x_test and len(split.x_test) == len(usual.x_test)
    flat = load_digits().images.reshape(len(load_digits().images), -1) / 16.0
    rows = {row.astype(np.float32).tobytes(): i for i, row in enumerate(flat)}
    positions = [rows[x.reshape(-1).numpy().tobytes()] for x in split.x_test]
    assert positions == sorted(positions)
    usual_rows = sorted(rows[x.reshape(-1).numpy().tobytes()] for x in usual.x_test)
    assert positions == usual_rows
    first = DATASETS.create("digits", seed=5, test_fraction=0.25, test_only=True, max_test=10)
    assert torch.equal(first.x_test, split.x_test[:10])


def write_png_folder(base: Path, split: str, per_class: int) -> tuple[np.ndarray, list[int]]:
    """PNGs under base/split/<class>/; returns the images and labels in file order."""
    images, labels = [], []
    rng = np.random.default_rng(len(split))
    for label, name in enumerate(("cat", "dog", "eel")):
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(4, 3, 3), dtype=np.uint8)
            path = base / split / name / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            images.append(pixels.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), labels


def test_imagefolder_test_only_is_file_order(tmp_path: Path) -> None:
    images, labels = write_png_folder(tmp_path, "test", 3)
    write_png_folder(tmp_path, "train", 5)
    split = DATASETS.create("imagefolder", path=tmp_path, test_only=True)
    assert split.class_names == ("cat", "dog", "eel")
    assert_test_only(split, images, labels, 9)
    usual = DATASETS.create("imagefolder", path=tmp_path)
    assert len(usual.x_train) == 15 and split.fingerprint != usual.fingerprint


def test_imagefolder_test_only_needs_no_train_folder_and_decodes_only_max_test(
    tmp_path: Path,
) -> None:
    images, labels = write_png_folder(tmp_path, "test", 3)
    (tmp_path / "test" / "eel" / "99.png").write_bytes(b"not read: after the first 4 files")
    split = DATASETS.create("imagefolder", path=tmp_path, test_only=True, max_test=4)
    assert_test_only(split, images, labels, 4)
    with pytest.raises(UserError, match="99.png"):
        DATASETS.create("imagefolder", path=tmp_path, test_only=True)
