"""Shared fixtures: single-threaded torch (faster for tiny models on 2 cores), digits."""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_gan.data.vision import CIFAR10_NAMES
from robustbench_gan.models.base import Classifier
from robustbench_gan.registry import DATASETS


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _private_store(tmp_path_factory):
    """The cells tests compute go to a store of the session's, never the user's default
    store (~/.cache/robustbench_gan): a test may still name its own."""
    previous = os.environ.get("RBG_CACHE_DIR")
    os.environ["RBG_CACHE_DIR"] = str(tmp_path_factory.mktemp("store"))
    yield
    if previous is None:
        os.environ.pop("RBG_CACHE_DIR", None)
    else:
        os.environ["RBG_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def digits():
    from robustbench_gan.registry import DATASETS

    return DATASETS.create("digits", seed=0)


def write_fake_cifar10(root: Path, per_batch: int) -> None:
    """A CIFAR-10 folder in torchvision's python format, random pixels, labels cycling."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": [i % 10 for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": list(CIFAR10_NAMES)}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


@pytest.fixture
def fake_cifar10(monkeypatch):
    """Writes a fake CIFAR-10 folder; torchvision's md5 check is told to accept it (the fake
    files cannot match the recorded sums)."""
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    return write_fake_cifar10


class TinyCNN(Classifier):
    """conv-relu-conv-relu-flatten body and a linear head, for 1x8x8 digits."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__((1, 8, 8), 10, mean=[mean], std=[std])
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.feature_dim = 32 * 4 * 4
        self.head = nn.Linear(self.feature_dim, 10)


@pytest.fixture(scope="session")
def tiny_cnn(digits) -> TinyCNN:
    """A TinyCNN trained once per session on the digits training split (attacks leave it as
    they found it, so tests share it)."""
    return train_tiny_cnn(digits.x_train, digits.y_train)


@pytest.fixture(scope="session")
def digits_mlp(digits) -> nn.Module:
    """The registry's MLP trained once per session on the digits training split (5 epochs,
    lr 3e-3), in eval mode: an honest model for the attack audits."""
    from robustbench_gan.contract.configs import TrainConfig
    from robustbench_gan.models.train import train_classifier
    from robustbench_gan.registry import CLASSIFIERS

    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "mlp", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    config = TrainConfig(epochs=5, lr=3e-3)
    train_classifier(model, digits.x_train, digits.y_train, config=config, seed=0, progress=False)
    return model.eval()


class Quantized(nn.Module):
    """Rounds the input to 0/1 first: its input gradient is zero everywhere. Its classifier
    is its differentiable stand-in (BPDA with the identity)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x))

    def gradient_approximation(self) -> nn.Module:
        return self.inner


def train_tiny_cnn(x, y, *, epochs: int = 6, seed: int = 0) -> TinyCNN:
    """A TinyCNN fitted to (x, y) with Adam (lr 0.01, minibatches of 64), in eval mode."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = TinyCNN(mean=float(x.mean()), std=float(x.std()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def fit_full_batch(model: nn.Module, x, y, *, steps: int) -> nn.Module:
    """``model`` fitted as a user would outside the tool: full-batch Adam at lr 0.01."""
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


TINY_SUITE = """
name = "tiny"
[dataset]
name = "digits"
max_train = 200
max_test = 40
[train]
epochs = 2
[eval]
eps = [0, 0.1]
[[targets]]
name = "mlp"
hidden = 8
[[targets]]
name = "small_cnn"
width = 4
[[attacks]]
name = "fgsm"
[[attacks]]
name = "pgd"
steps = 2
"""


@pytest.fixture
def tiny_suite(tmp_path):
    """A suite of seconds: two small targets, FGSM and PGD-2 at eps 0 and 0.1 on digits."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SUITE)
    return path


NET = '''
import torch
from torch import nn


class Net(nn.Module):
    """A plain module: no in_shape, no features(), images in [0, 1]."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.body(x)
'''


@pytest.fixture
def own_model(tmp_path, monkeypatch):
    """A module file and a state dict trained outside the tool, in the working directory
    (test_own_model.py, test_robustness_card.py)."""
    (tmp_path / "tinynet.py").write_text(textwrap.dedent(NET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tinynet

    data = DATASETS.create("digits", seed=0)
    torch.manual_seed(0)
    model = fit_full_batch(tinynet.Net(), data.x_train, data.y_train, steps=30)
    torch.save(model.state_dict(), tmp_path / "net.pt")
    yield tmp_path, model.eval()
    monkeypatch.delitem(__import__("sys").modules, "tinynet")
