"""Dataset loaders: shapes, ranges, seeded stratified splits, and one-line errors for missing data."""

from __future__ import annotations

import gzip
import os
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_gan.contract.data import DataSplit, resolve_root
from robustbench_gan.data import stratified_split
from robustbench_gan.data.idx import read_idx
from robustbench_gan.errors import UserError
from robustbench_gan.registry import DATASETS

MNIST_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def class_fractions(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(y, minlength=num_classes).double() / len(y)


def row_counts(x: torch.Tensor) -> Counter[bytes]:
    return Counter(row.numpy().tobytes() for row in x.reshape(len(x), -1))


# -- digits -------------------------------------------------------------------


def test_digits_is_float_nchw_in_unit_range_with_int64_labels() -> None:
    split = DATASETS.create("digits")
    assert split.shape == (1, 8, 8)
    assert len(split.x_train) + len(split.x_test) == 1797
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert 0.0 <= float(split.x_train.min()) and float(split.x_train.max()) == 1.0
    assert split.num_classes == 10 and split.class_names == tuple("0123456789")
    assert len(split.mean) == len(split.std) == 1 and split.std[0] >= 1e-3


def test_digits_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = (DATASETS.create("digits", seed=s) for s in (3, 3, 4))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.fingerprint == b.fingerprint
    assert not torch.equal(a.x_test, c.x_test)
    assert a.fingerprint != c.fingerprint


def test_digits_split_is_stratified_and_uses_each_sample_once() -> None:
    split = DATASETS.create("digits", seed=7, test_fraction=0.25)
    assert len(split.x_test) == pytest.approx(0.25 * 1797, abs=1)
    gap = class_fractions(split.y_train, 10) - class_fractions(split.y_test, 10)
    assert float(gap.abs().max()) < 0.01
    full = DATASETS.create("digits", seed=0)
    everything = torch.cat([full.x_train, full.x_test])
    assert row_counts(torch.cat([split.x_train, split.x_test])) == row_counts(everything)


def test_max_train_and_max_test_keep_classes_balanced() -> None:
    split = DATASETS.create("digits", max_train=100, max_test=50)
    assert (len(split.x_train), len(split.x_test)) == (100, 50)
    assert torch.bincount(split.y_train, minlength=10).min() >= 9
    assert torch.bincount(split.y_test, minlength=10).min() >= 4


@pytest.mark.parametrize("limit", [0, -5, 2.5])
def test_sample_limit_must_be_a_positive_integer(limit: object) -> None:
    with pytest.raises(UserError, match="sample limit"):
        DATASETS.create("digits", max_train=limit)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_test_fraction_outside_unit_interval_is_a_user_error(fraction: float) -> None:
    with pytest.raises(UserError, match="test_fraction"):
        DATASETS.create("digits", test_fraction=fraction)


def test_stratified_split_rejects_bad_fraction_directly() -> None:
    x, y = torch.zeros(20, 1, 2, 2), torch.arange(20) % 2
    with pytest.raises(UserError):
        stratified_split(x, y, test_fraction=1.0, seed=0)


def test_std_is_floored_for_constant_images() -> None:
    zeros = torch.zeros(4, 3, 2, 2)
    labels = torch.tensor([0, 1, 0, 1])
    split = DataSplit("flat", zeros, labels, zeros, labels, 2, ("a", "b"))
    assert split.mean == (0.0, 0.0, 0.0) and split.std == pytest.approx((1e-3,) * 3)


def test_resolve_root_prefers_argument_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RBG_DATA_DIR", raising=False)
    assert resolve_root(None) is None
    monkeypatch.setenv("RBG_DATA_DIR", str(tmp_path))
    assert resolve_root(None) == tmp_path
    assert resolve_root(tmp_path / "x") == tmp_path / "x"


# -- IDX (MNIST family) ---------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def fake_digits(n_per_class: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images whose pixel (0, 0) holds their own index, and labels cycling 0..9."""
    n = 10 * n_per_class
    rng = np.random.default_rng(offset)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(offset, offset + n)
    return images, np.arange(n, dtype=np.uint8) % 10


def write_pair(
    folder: Path, stems: tuple[str, str], images: np.ndarray, labels: np.ndarray, *, gz: bool
) -> None:
    write_idx(folder / stems[0], images, gz=gz)
    write_idx(folder / stems[1], labels, gz=gz)


def labels_by_index(images: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    return {int(img[0, 0]): int(lab) for img, lab in zip(images, labels)}


def assert_labels_match(x: torch.Tensor, y: torch.Tensor, truth: dict[int, int]) -> None:
    indices = torch.round(x[:, 0, 0, 0] * 255).long().tolist()
    assert [truth[i] for i in indices] == y.tolist()


def test_read_idx_round_trips_shape_and_values(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte", array, gz=False)
    write_idx(tmp_path / "b-idx3-ubyte", array, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), array)


def test_read_idx_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "t-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8))[:-3])
    with pytest.raises(UserError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_only_test_files_are_split_stratified_by_seed(tmp_path: Path, gz: bool) -> None:
    images, labels = fake_digits(5)
    write_pair(tmp_path / "mnist", MNIST_TEST_FILES, images, labels, gz=gz)
    split = DATASETS.create("mnist", root=tmp_path, seed=1, test_fraction=0.2)
    assert split.shape == (1, 28, 28) and (len(split.x_train), len(split.x_test)) == (40, 10)
    assert float(split.x_train.min()) >= 0.0 and float(split.x_train.max()) <= 1.0
    assert torch.bincount(split.y_test, minlength=10).tolist() == [1] * 10
    truth = labels_by_index(images, labels)
    assert_labels_match(split.x_train, split.y_train, truth)
    assert_labels_match(split.x_test, split.y_test, truth)
    again = DATASETS.create("mnist", root=tmp_path, seed=1, test_fraction=0.2)
    other = DATASETS.create("mnist", root=tmp_path, seed=2, test_fraction=0.2)
    assert torch.equal(split.x_test, again.x_test) and not torch.equal(split.x_test, other.x_test)


def test_mnist_train_and_test_files_give_the_official_split(tmp_path: Path) -> None:
    train_images, train_labels = fake_digits(3, offset=0)
    test_images, test_labels = fake_digits(2, offset=100)
    write_pair(tmp_path, MNIST_TRAIN_FILES, train_images, train_labels, gz=True)
    write_pair(tmp_path, MNIST_TEST_FILES, test_images, test_labels, gz=False)
    split = DATASETS.create("mnist", root=tmp_path, test_fraction=0.5)
    assert (len(split.x_train), len(split.x_test)) == (30, 20)
    torch.testing.assert_close(split.x_train[:, 0], torch.from_numpy(train_images).float() / 255)
    assert split.y_test.tolist() == test_labels.tolist()


def test_mnist_reads_data_dir_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = fake_digits(2)
    write_pair(tmp_path, MNIST_TEST_FILES, images, labels, gz=True)
    monkeypatch.setenv("RBG_DATA_DIR", str(tmp_path))
    assert len(DATASETS.create("mnist", test_fraction=0.5).x_test) == 10


def test_missing_mnist_is_a_one_line_user_error_naming_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        DATASETS.create("mnist", root=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path) in message and str(tmp_path / "MNIST" / "raw") in message
    for stem in MNIST_TEST_FILES + MNIST_TRAIN_FILES:
        assert stem in message
    assert "RBG_DATA_DIR" in message and "download = true" in message


def test_mnist_without_any_data_dir_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RBG_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="no data folder"):
        DATASETS.create("mnist")


def test_fashion_mnist_reads_torchvision_layout(tmp_path: Path) -> None:
    images, labels = fake_digits(4)
    write_pair(tmp_path / "FashionMNIST" / "raw", MNIST_TEST_FILES, images, labels, gz=False)
    split = DATASETS.create("fashion_mnist", root=tmp_path, test_fraction=0.25)
    assert (len(split.x_train), len(split.x_test)) == (30, 10)
    assert split.class_names[0] == "T-shirt/top" and split.num_classes == 10
    assert_labels_match(split.x_test, split.y_test, labels_by_index(images, labels))


def real_mnist_root() -> Path | None:
    root = resolve_root(None)
    if root is None:
        return None
    folders = (root, root / "mnist", root / "MNIST" / "raw")
    has_files = any(list(f.glob("t10k-images-idx3-ubyte*")) for f in folders if f.is_dir())
    return root if has_files else None


@pytest.mark.skipif(real_mnist_root() is None, reason="$RBG_DATA_DIR holds no MNIST files")
def test_real_mnist_test_files_split_8000_2000() -> None:
    split = DATASETS.create("mnist", test_fraction=0.2, seed=0)
    assert (len(split.x_train), len(split.x_test)) == (8000, 2000)
    assert split.shape == (1, 28, 28) and 0.1 < split.mean[0] < 0.15
    gap = class_fractions(split.y_train, 10) - class_fractions(split.y_test, 10)
    assert float(gap.abs().max()) < 0.005


# -- torchvision sets -----------------------------------------------------------


def test_cifar10_reads_torchvision_folder(tmp_path: Path, fake_cifar10) -> None:
    fake_cifar10(tmp_path, per_batch=20)
    split = DATASETS.create("cifar10", root=tmp_path)
    assert split.shape == (3, 32, 32) and (len(split.x_train), len(split.x_test)) == (100, 20)
    assert split.x_train.dtype == torch.float32 and float(split.x_train.max()) <= 1.0
    assert split.class_names[0] == "airplane" and split.y_test.tolist() == [
        i % 10 for i in range(20)
    ]
    first = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())["data"][
        0
    ]
    torch.testing.assert_close(split.x_train[0].reshape(-1) * 255, torch.from_numpy(first).float())


def test_missing_cifar10_is_a_one_line_user_error_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        DATASETS.create("cifar10", root=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message and "cifar-10-batches-py" in message


def test_svhn_reads_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.io
    import torchvision.datasets.svhn

    rng = np.random.default_rng(0)
    for part, n in (("train", 12), ("test", 6)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1)  # SVHN stores the digit 0 as label 10
        scipy.io.savemat(tmp_path / f"{part}_32x32.mat", {"X": x, "y": y})
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", lambda *args, **kwargs: True)
    split = DATASETS.create("svhn", root=tmp_path)
    assert split.shape == (3, 32, 32) and (len(split.x_train), len(split.x_test)) == (12, 6)
    assert split.y_test.tolist() == [1, 2, 3, 4, 5, 6] and split.y_train.tolist()[9] == 0


def test_data_dir_env_is_not_needed_for_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBG_DATA_DIR", os.devnull)
    assert DATASETS.create("digits", max_test=10).x_test.shape == (10, 1, 8, 8)
