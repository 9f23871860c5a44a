"""Bad data and bad adversarial examples: a CIFAR-10 pickle never runs code, `rbg verify`
refuses tensors it cannot check, and an image folder's symlink loop is one line. Every
refusal is one line starting `rbg: error:`, exit 2, no traceback and no marker file."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import robustbench_gan
from robustbench_gan.cli import main
from robustbench_gan.data.vision import read_cifar_batch, unpickle_batch
from robustbench_gan.errors import UserError
from robustbench_gan.registry import DATASETS


class Hostile:
    """Unpickled by a plain unpickler, it calls ``call(*args)``: creating a marker file."""

    def __init__(self, call: object, *args: object) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple:
        return self.call, self.args


def hostile_payloads(marker: Path) -> dict[str, Hostile]:
    """Two ways a pickle creates ``marker``: open() it, or a shell command touching it."""
    return {
        "open": Hostile(open, str(marker), "w"),
        "system": Hostile(os.system, f"touch {marker}"),
    }


def write_cifar_folder(root: Path, test_batch: object, protocol: int = 2) -> Path:
    """root/cifar-10-batches-py with only ``test_batch`` (all the test-only reader opens)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_batch").write_bytes(pickle.dumps(test_batch, protocol=protocol))
    return folder / "test_batch"


def small_batch(n: int = 6) -> dict:
    """A test batch as the python version holds it: uint8 rows of 3072 pixels, int labels."""
    data = np.random.default_rng(0).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return {"data": data, "labels": [i % 10 for i in range(n)], "batch_label": "testing"}


def accept_any_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision's md5 check pass, so the unpickler itself is what gets tried."""
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def one_line_error(capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """The only stderr line, which starts `rbg: error:` and names each of ``names``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rbg: error:") and "Traceback" not in err, err
    assert all(name in lines[0] for name in names), lines[0]
    return lines[0]


# -- 1. a CIFAR-10 data folder never runs code ---------------------------------------


def cifar_commands(tmp_path: Path) -> dict[str, list[str]]:
    """`rbg eval`, `rbg validate --data-dir` of a test_only suite and `rbg verify`, all on
    the cifar10 folder under tmp_path/data."""
    data = str(tmp_path / "data")
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[dataset]\nname = "cifar10"\ntest_only = true\nmax_test = 4\n[eval]\neps = [0]\n'
        '[[targets]]\nname = "mlp"\n[[attacks]]\nname = "fgsm"\n'
    )
    torch.save(torch.rand(4, 3, 32, 32), tmp_path / "adv.pt")
    model = ["--model", "mlp", "--dataset", "cifar10", "--eps", "8/255", "--data-dir", data]
    return {
        "eval": ["eval", *model, "--n", "4", "--attacks", "fgsm", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "c"), "--no-progress", "--device", "cpu"],
        "validate": ["validate", str(suite), "--data-dir", data],
        "verify": ["verify", *model, "--adv", str(tmp_path / "adv.pt")],
    }  # fmt: skip


@pytest.mark.parametrize("md5_checked", [True, False], ids=["md5", "unpickler"])
@pytest.mark.parametrize("payload", ["open", "system"])
@pytest.mark.parametrize("command", ["eval", "validate", "verify"])
def test_a_hostile_test_batch_runs_nothing_through_the_cli(
    tmp_path, capsys, monkeypatch, command, payload, md5_checked
):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    batch = {"data": hostile_payloads(marker)[payload], "labels": [0]}
    path = write_cifar_folder(tmp_path / "data", batch)
    if not md5_checked:
        accept_any_md5(monkeypatch)
    assert main(cifar_commands(tmp_path)[command]) == 2
    line = one_line_error(capsys, str(path))
    assert ("not the official" if md5_checked else "may not run code") in line
    assert not marker.exists()


@pytest.mark.parametrize("md5_checked", [True, False], ids=["md5", "unpickler"])
def test_a_hostile_test_batch_runs_nothing_through_benchmark(tmp_path, monkeypatch, md5_checked):
    marker = tmp_path / "MARKER"
    write_cifar_folder(tmp_path / "data", hostile_payloads(marker)["system"])
    if not md5_checked:
        accept_any_md5(monkeypatch)
    with pytest.raises(UserError, match="not the official|may not run code") as info:
        robustbench_gan.benchmark(
            "mlp", dataset="cifar10", eps="8/255", n_examples=4, attacks=["fgsm"],
            data_dir=tmp_path / "data", out=tmp_path / "o", cache_dir=tmp_path / "c",
            device="cpu", progress=False,
        )  # fmt: skip
    assert "\n" not in str(info.value) and "test_batch" in str(info.value)
    assert not marker.exists()


def test_a_hostile_test_batch_in_a_real_process_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    write_cifar_folder(tmp_path / "data", hostile_payloads(marker)["open"])
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_gan", *cifar_commands(tmp_path)["validate"]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "not the official" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_restricted_unpickler_refuses_code_at_every_protocol(tmp_path, protocol):
    marker = tmp_path / "MARKER"
    for name, payload in hostile_payloads(marker).items():
        path = write_cifar_folder(tmp_path / name, {"data": payload}, protocol)
        with pytest.raises(UserError, match="may not run code") as info:
            read_cifar_batch(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_plain_batch_still_loads_through_the_restricted_unpickler(tmp_path, protocol):
    batch = {**small_batch(), "filenames": [b"a.png", b""]}
    path = write_cifar_folder(tmp_path, batch, protocol)
    entry = unpickle_batch(path)
    assert np.array_equal(entry["data"], batch["data"]) and entry["filenames"] == [b"a.png", b""]
    images, labels = read_cifar_batch(path)
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    assert np.array_equal(images.reshape(6, -1), batch["data"]) and labels == batch["labels"]


def test_a_test_batch_that_is_not_the_official_file_is_refused_by_md5(tmp_path):
    path = write_cifar_folder(tmp_path, small_batch())
    with pytest.raises(UserError, match="not the official CIFAR-10 test batch") as info:
        DATASETS.create("cifar10", root=tmp_path, test_only=True)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"not a pickle", pickle.dumps([1, 2]), pickle.dumps({"labels": [1]})]
)
def test_a_broken_test_batch_is_one_line(tmp_path, monkeypatch, content):
    accept_any_md5(monkeypatch)
    path = write_cifar_folder(tmp_path, None)
    path.write_bytes(content)
    with pytest.raises(UserError, match="cannot read") as info:
        DATASETS.create("cifar10", root=tmp_path, test_only=True)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def real_cifar10_root() -> Path | None:
    """$RBG_DATA_DIR when it holds the official python-version test batch."""
    from robustbench_gan.contract.data import resolve_root

    root = resolve_root(None)
    has_it = root is not None and (root / "cifar-10-batches-py" / "test_batch").is_file()
    return root if has_it else None


@pytest.mark.skipif(real_cifar10_root() is None, reason="$RBG_DATA_DIR holds no CIFAR-10")
def test_the_official_test_batch_passes_md5_and_the_restricted_unpickler():
    split = DATASETS.create("cifar10", root=real_cifar10_root(), test_only=True, max_test=10)
    assert len(split.x_test) == 10 and split.y_test.tolist()[:3] == [3, 8, 8]


# -- 2. rbg verify: tensors it cannot check ------------------------------------------


@pytest.fixture
def verify_setup(tmp_path, monkeypatch):
    """A digits test split and `rbg verify` arguments reading tmp_path/adv.pt."""
    monkeypatch.chdir(tmp_path)
    data = DATASETS.create("digits", seed=0, test_only=True, max_test=8)
    args = ["verify", "--model", "mlp", "--adv", "adv.pt", "--dataset", "digits", "--eps", "0.1"]
    return data.x_test, args


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.bfloat16])
def test_verify_takes_other_float_dtypes_and_checks_them_as_given(verify_setup, capsys, dtype):
    x, args = verify_setup
    torch.save(x.to(dtype), "adv.pt")  # the clean images, in another precision
    assert main(args) == 0
    assert "8 valid, 0 invalid" in capsys.readouterr().out
    above = x.to(dtype).clone()
    above[2, 0, 0, 0] = 1.5
    torch.save(above, "adv.pt")
    assert main(args) == 1  # an invalid image: exit 1, as documented
    out = capsys.readouterr().out
    assert "7 valid, 1 invalid" in out and "out of range: 1 (2)" in out


def test_float64_just_above_one_is_out_of_range_though_float32_rounds_it_to_one(
    verify_setup, capsys
):
    x, args = verify_setup
    adv = x.double().clone()
    adv[0, 0, 0, 0] = 1 + 1e-12
    assert float(adv[0, 0, 0, 0].float()) == 1.0
    torch.save(adv, "adv.pt")
    assert main(args) == 1
    assert "out of range: 1 (0)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x: torch.tensor(0.5), "shape ()"),
        (lambda x: x[:0], "n >= 1"),
        (lambda x: x.to_sparse(), "dense tensor, got a sparse_coo one"),
        (lambda x: x.flatten(1).to_sparse_csr(), "dense tensor, got a sparse_csr one"),
        (lambda x: (x * 255).to(torch.uint8), "floating-point"),
        (lambda x: x.to(torch.complex64), "floating-point"),
        (lambda x: x[0], "do not match"),
        (lambda x: x.flatten(1), "do not match"),
        (lambda x: [x], "holds a list"),
    ],
    ids=["0-d", "empty", "sparse", "sparse_csr", "uint8", "complex", "3-d", "2-d", "list"],
)
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")
def test_verify_refuses_what_it_cannot_check_in_one_line(verify_setup, capsys, make, message):
    x, args = verify_setup
    torch.save(make(x), "adv.pt")
    assert main(args) == 2
    one_line_error(capsys, message)


@pytest.mark.parametrize("make", [lambda x: x.to_sparse(), lambda x: torch.tensor(0.5)])
def test_verify_in_a_real_process_prints_one_line_and_no_warning(verify_setup, make):
    x, args = verify_setup
    torch.save(make(x), "adv.pt")
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_gan", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rbg: error: adv.pt"), proc.stderr


# -- 3. imagefolder: symbolic links ---------------------------------------------------


def write_images(folder: Path, n: int = 2) -> None:
    """n 4x4 RGB PNG files in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.full((4, 4, 3), 40 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def image_root(tmp_path: Path) -> Path:
    """tmp_path/imgs with test/ and train/, classes a and b, two images each."""
    root = tmp_path / "imgs"
    for split in ("train", "test"):
        for name in ("a", "b"):
            write_images(root / split / name)
    return root


@pytest.mark.parametrize("loop", ["test/a/loop.png", "test/loop", "train/b/x.jpg", "train/loop"])
def test_a_symlink_loop_is_refused_in_one_line_naming_it(tmp_path, capsys, loop):
    root = image_root(tmp_path)
    (root / loop).symlink_to(root / loop)  # links to itself: ELOOP when followed
    with pytest.raises(UserError, match="cannot follow") as info:
        DATASETS.create("imagefolder", path=root)
    assert "\n" not in str(info.value) and str(root / loop) in str(info.value)
    args = ["eval", "--model", "mlp", "--dataset", "imagefolder", "--eps", "0.1", "--n", "2",
            "--attacks", "fgsm", "--dataset-param", f"path={root}", "--out", str(tmp_path / "o"),
            "--cache-dir", str(tmp_path / "c"), "--no-progress", "--device", "cpu"]  # fmt: skip
    if loop.startswith("test"):  # eval reads test/ alone
        assert main(args) == 2
        one_line_error(capsys, "cannot follow", str(root / loop))


def test_hidden_links_and_links_without_an_image_suffix_are_not_followed(tmp_path):
    root = image_root(tmp_path)
    for name in ("test/.loop", "test/a/notes.txt", "test/a/.hidden.png"):
        (root / name).symlink_to(root / name)
    split = DATASETS.create("imagefolder", path=root)
    assert len(split.x_test) == 4 and split.class_names == ("a", "b")


def test_symlinks_that_resolve_are_followed_as_torchvision_follows_them(tmp_path):
    root = image_root(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    write_images(elsewhere / "c", n=3)
    for split in ("train", "test"):
        (root / split / "c").symlink_to(elsewhere / "c", target_is_directory=True)
    (root / "test" / "a" / "linked.png").symlink_to(elsewhere / "c" / "0.png")
    split = DATASETS.create("imagefolder", path=root)
    assert split.class_names == ("a", "b", "c") and len(split.x_test) == 2 + 1 + 2 + 3


def test_an_image_is_decoded_only_by_the_image_formats_whatever_its_content(tmp_path, monkeypatch):
    """Pillow picks a decoder by content: an EPS file named .png would go to Ghostscript where
    it is installed. Only the listed image formats may decode a file; anything else is one
    line naming it."""
    from PIL import EpsImagePlugin

    tried = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: tried.append(1))
    root = image_root(tmp_path)
    eps = root / "test" / "a" / "0.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    with pytest.raises(UserError, match="cannot read image") as info:
        DATASETS.create("imagefolder", path=root).x_test  # noqa: B018
    assert "\n" not in str(info.value) and str(eps) in str(info.value)
    assert not tried  # the EPS decoder never saw it
