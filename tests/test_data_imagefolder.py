"""The imagefolder dataset: layout, order, sizes, errors, and the real CIFAR-10 JPEG copy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_gan.contract.data import resolve_root
from robustbench_gan.data.vision import CIFAR10_NAMES
from robustbench_gan.errors import UserError
from robustbench_gan.registry import DATASETS

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("b_cat", "a_dog", "c_eel")  # sorted: a_dog, b_cat, c_eel


def write_image(path: Path, ident: int, size: tuple[int, int] = (6, 5)) -> np.ndarray:
    """A random RGB PNG (height x width = size) whose pixel (0, 0) red value is ``ident``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(ident).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    pixels[0, 0, 0] = ident
    Image.fromarray(pixels).save(path)
    return pixels


def write_folder(base: Path, per_class: dict[str, int]) -> dict[int, tuple[str, str, np.ndarray]]:
    """train/ and test/ with per_class[split] images per class; ident -> (split, class, pixels)."""
    truth = {}
    ident = 0
    for split, n in per_class.items():
        for name in CLASSES:
            for i in range(n):
                truth[ident] = (
                    split,
                    name,
                    write_image(base / split / name / f"{i:03d}.png", ident),
                )
                ident += 1
    return truth


def idents(x: torch.Tensor) -> list[int]:
    return torch.round(x[:, 0, 0, 0] * 255).long().tolist()


def test_reads_both_splits_with_sorted_classes_and_exact_pixels(tmp_path: Path) -> None:
    truth = write_folder(tmp_path / "set", {"train": 4, "test": 2})
    split = DATASETS.create("imagefolder", path=tmp_path / "set")
    assert split.class_names == ("a_dog", "b_cat", "c_eel") and split.num_classes == 3
    assert split.shape == (3, 6, 5) and (len(split.x_train), len(split.x_test)) == (12, 6)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    for part in ("train", "test"):
        x, y = getattr(split, f"x_{part}"), getattr(split, f"y_{part}")
        assert sorted(idents(x)) == sorted(k for k, v in truth.items() if v[0] == part)
        for image, label, ident in zip(x, y, idents(x)):
            _, name, pixels = truth[ident]
            assert split.class_names[int(label)] == name
            expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(image, expected)


def test_order_is_seeded_class_interleaved_and_the_fingerprint_is_stable(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 4, "test": 4})
    a, b = (DATASETS.create("imagefolder", path=tmp_path, seed=3) for _ in range(2))
    other = DATASETS.create("imagefolder", path=tmp_path, seed=4)
    assert a.fingerprint == b.fingerprint and a.fingerprint != other.fingerprint
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, other.x_test)
    for y in (a.y_test, a.y_train):  # any prefix is class-balanced
        assert sorted(y[:3].tolist()) == [0, 1, 2] and sorted(y[3:6].tolist()) == [0, 1, 2]


def test_max_train_and_max_test_keep_a_balanced_prefix(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 4, "test": 3})
    split = DATASETS.create("imagefolder", path=tmp_path, max_train=6, max_test=3)
    assert (len(split.x_train), len(split.x_test)) == (6, 3)
    assert Counter(split.y_train.tolist()) == {0: 2, 1: 2, 2: 2}
    full = DATASETS.create("imagefolder", path=tmp_path)
    assert torch.equal(split.x_test, full.x_test[:3])
    with pytest.raises(UserError, match="sample limit"):
        DATASETS.create("imagefolder", path=tmp_path, max_test=0)


def test_relative_path_is_taken_under_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_folder(tmp_path / "sets" / "mine", {"train": 1, "test": 1})
    assert len(DATASETS.create("imagefolder", path="mine", root=tmp_path / "sets").x_test) == 3
    monkeypatch.setenv("RBG_DATA_DIR", str(tmp_path / "sets"))
    assert len(DATASETS.create("imagefolder", path="mine").x_train) == 3
    monkeypatch.delenv("RBG_DATA_DIR")
    with pytest.raises(UserError, match="no data folder was given"):
        DATASETS.create("imagefolder", path="mine")


def test_only_image_files_count_and_any_extension_case(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 2, "test": 1})
    (tmp_path / "train" / "a_dog" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "a_dog" / "sub").mkdir()
    write_image(tmp_path / "train" / "a_dog" / ".hidden.png", 200)
    pixels = np.full((6, 5, 3), 77, dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "train" / "a_dog" / "zz.BMP")
    (tmp_path / "README.md").write_text("a readme beside train/ and test/")
    split = DATASETS.create("imagefolder", path=tmp_path)
    assert len(split.x_train) == 7 and 200 not in idents(split.x_train)
    assert 77 in idents(split.x_train)


def test_jpeg_files_are_read(tmp_path: Path) -> None:
    pixels = np.full((4, 4, 3), 128, dtype=np.uint8)
    for split in ("train", "test"):
        for i, name in enumerate(CLASSES):
            (tmp_path / split / name).mkdir(parents=True)
            suffix = ("jpg", "jpeg", "JPG")[i]
            Image.fromarray(pixels).save(tmp_path / split / name / f"0.{suffix}", format="JPEG")
    split = DATASETS.create("imagefolder", path=tmp_path)
    assert split.shape == (3, 4, 4) and abs(float(split.x_test.mean()) - 128 / 255) < 0.02


def test_mixed_sizes_need_resize(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 1, "test": 1})
    write_image(tmp_path / "test" / "c_eel" / "big.png", 99, size=(9, 7))
    with pytest.raises(UserError) as info:
        DATASETS.create("imagefolder", path=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "resize" in message and "big.png" in message
    assert DATASETS.create("imagefolder", path=tmp_path, resize=8).shape == (3, 8, 8)
    assert DATASETS.create("imagefolder", path=tmp_path, resize=[6, 10]).shape == (3, 6, 10)
    for bad in (0, [4], "32", [4, 0], True):
        with pytest.raises(UserError, match="resize"):
            DATASETS.create("imagefolder", path=tmp_path, resize=bad)


def test_grayscale_with_one_channel(tmp_path: Path) -> None:
    truth = write_folder(tmp_path, {"train": 1, "test": 1})
    split = DATASETS.create("imagefolder", path=tmp_path, channels=1)
    assert split.shape == (1, 6, 5)
    first_file = tmp_path / "test" / "a_dog" / "000.png"
    with Image.open(first_file) as image:
        gray = torch.from_numpy(np.array(image.convert("L"))).float() / 255
    matches = [x for x in split.x_test if torch.equal(x[0], gray)]
    assert len(matches) == 1 and len(truth) == 6
    with pytest.raises(UserError, match="channels"):
        DATASETS.create("imagefolder", path=tmp_path, channels=2)


def test_a_class_missing_in_one_split_is_named(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 1, "test": 1})
    write_image(tmp_path / "train" / "d_fox" / "0.png", 50)
    with pytest.raises(UserError) as info:
        DATASETS.create("imagefolder", path=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "d_fox" in message and str(tmp_path / "test") in message


def test_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 1, "test": 1})
    (tmp_path / "test" / "d_fox").mkdir()
    (tmp_path / "train" / "d_fox").mkdir()
    with pytest.raises(UserError, match="no image files"):
        DATASETS.create("imagefolder", path=tmp_path)


def test_missing_folders_are_one_line_user_errors(tmp_path: Path) -> None:
    cases = [
        ({"path": tmp_path / "nowhere"}, "not found"),
        ({}, "no folder given"),
        ({"path": tmp_path}, "no test/ folder"),
    ]
    for kwargs, match in cases:
        with pytest.raises(UserError, match=match) as info:
            DATASETS.create("imagefolder", **kwargs)
        assert "\n" not in str(info.value)
    write_image(tmp_path / "test" / "a" / "0.png", 1)
    with pytest.raises(UserError, match="test_only = true"):
        DATASETS.create("imagefolder", path=tmp_path)


def test_a_corrupt_image_is_a_user_error_naming_it(tmp_path: Path) -> None:
    write_folder(tmp_path, {"train": 1, "test": 1})
    (tmp_path / "train" / "b_cat" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="bad.png"):
        DATASETS.create("imagefolder", path=tmp_path)


def test_cifar10_jpeg_suite_validates() -> None:
    from robustbench_gan.suite import load_suite

    suite = load_suite(ROOT / "suites" / "cifar10-jpeg.toml")
    assert suite.dataset.name == "imagefolder"
    assert suite.dataset.params["path"] == "cifar10-jpeg"
    assert {a.name for a in suite.attacks} == {"fgsm", "pgd", "autoattack"}
    assert [d.name for d in suite.defenses] == ["gaussian_augment"]


def real_cifar10_jpeg() -> Path | None:
    root = resolve_root(None)
    if root is None or not (root / "cifar10-jpeg" / "test").is_dir():
        return None
    return root


@pytest.mark.skipif(real_cifar10_jpeg() is None, reason="$RBG_DATA_DIR holds no cifar10-jpeg")
def test_real_cifar10_jpeg_folder() -> None:
    split = DATASETS.create("imagefolder", path="cifar10-jpeg")
    assert (len(split.x_train), len(split.x_test)) == (20000, 10000)
    assert split.class_names == CIFAR10_NAMES and split.num_classes == 10
    assert split.shape == (3, 32, 32)
    assert float(split.x_test.min()) >= 0.0 and float(split.x_test.max()) <= 1.0
    assert torch.bincount(split.y_test, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(split.y_test[:500], minlength=10).tolist() == [50] * 10
    assert torch.bincount(split.y_train, minlength=10).tolist() == [2000] * 10


def test_the_source_names_the_test_images_not_the_place(tmp_path: Path) -> None:
    """Two folders of the same files share a source; another image in test/ changes it; the
    train/ images and how much is read do not enter it."""
    import shutil

    write_folder(tmp_path / "a", {"train": 2, "test": 2})
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    write_image(tmp_path / "b" / "train" / CLASSES[1] / "extra.png", 77)
    a = DATASETS.create("imagefolder", path=str(tmp_path / "a"))
    b = DATASETS.create("imagefolder", path=str(tmp_path / "b"), max_test=3)
    only = DATASETS.create("imagefolder", path=str(tmp_path / "a"), test_only=True, max_test=2)
    assert a.source == b.source == only.source and a.source.startswith("imagefolder-")
    write_image(tmp_path / "b" / "test" / CLASSES[0] / "zzz.png", 99)
    assert DATASETS.create("imagefolder", path=str(tmp_path / "b")).source != a.source


def test_rbg_eval_takes_dataset_options_and_ranks_folders_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rbg eval --dataset imagefolder --dataset-param path=...` reads that folder, and its
    leaderboard names the folder's content, so another folder never ranks with it."""
    import pandas as pd

    from robustbench_gan.cli import main

    for name, n in (("one", 2), ("two", 3)):
        write_folder(tmp_path / name, {"test": n})
    monkeypatch.chdir(tmp_path)
    common = ["eval", "--model", "mlp", "--dataset", "imagefolder", "--eps", "0.1",
              "--n", "6", "--attacks", "fgsm", "--no-progress", "--cache-dir", "c"]  # fmt: skip
    sources = []
    for name in ("one", "two"):
        assert main([*common, "--dataset-param", f"path={tmp_path / name}", "--out", name]) == 0
        board = pd.read_csv(tmp_path / name / "leaderboard.csv")
        sources.append(board["dataset"].iloc[0])
        assert board["n_eval"].iloc[0] == 6
    assert sources[0] != sources[1] and all(s.startswith("imagefolder-") for s in sources)
    capsys.readouterr()
    assert main([*common, "--dataset-param", "colour=3"]) == 2
    assert "has no parameter 'colour'" in capsys.readouterr().err
    assert main([*common, "--dataset-param", "test_only=false"]) == 2
    assert "cannot set test_only" in capsys.readouterr().err


@pytest.mark.skipif(real_cifar10_jpeg() is None, reason="$RBG_DATA_DIR holds no cifar10-jpeg")
def test_rbg_eval_on_the_cifar10_jpeg_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from robustbench_gan.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["eval", "--model", "small_cnn", "--dataset", "imagefolder", "--dataset-param",
            "path=cifar10-jpeg", "--eps", "8/255", "--n", "10", "--attacks", "fgsm",
            "--out", "o", "--cache-dir", "c", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "on imagefolder-" in capsys.readouterr().out
