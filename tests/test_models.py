"""Classifiers, the training loop and verified checkpoints."""

from __future__ import annotations

import pytest
import torch

from robustbench_gan.checkpoint import (
    CorruptFileError,
    load_verified,
    sha256_bytes,
    tensors_to_bytes,
    write_atomic,
)
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models import Classifier, Ensemble
from robustbench_gan.models.objective import TrainingObjective
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import CLASSIFIERS
from robustbench_gan.utils import predict

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 17, 23)]


@pytest.mark.parametrize("name", CLASSIFIERS.list())
@pytest.mark.parametrize("shape", SHAPES)
def test_any_input_size_and_channel_count(name, shape):
    kwargs = {"width": 8} if name == "resnet18" else {}
    model = CLASSIFIERS.create(name, in_shape=shape, num_classes=7, **kwargs)
    assert isinstance(model, Classifier)
    x = torch.rand(2, *shape)
    logits = model(x)
    assert logits.shape == (2, 7)
    assert model.features(x).shape == (2, model.feature_dim)


def test_normalization_is_the_first_layer():
    model = CLASSIFIERS.create("mlp", in_shape=(1, 4, 4), num_classes=3, mean=[0.5], std=[0.25])
    x = torch.rand(5, 1, 4, 4)
    expected = model.head(model.body((x - 0.5) / 0.25))
    torch.testing.assert_close(model(x), expected)


def test_training_is_seeded_and_learns(digits):
    def train(seed):
        torch.manual_seed(seed)
        model = CLASSIFIERS.create(
            "mlp", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
        )
        history = train_classifier(
            model,
            digits.x_train,
            digits.y_train,
            config=TrainConfig(epochs=5, lr=3e-3),
            seed=seed,
            progress=False,
        )
        return model, history

    a, hist_a = train(0)
    b, hist_b = train(0)
    c, _ = train(1)
    assert hist_a.epoch_loss == hist_b.epoch_loss
    assert hist_a.epoch_loss[-1] < hist_a.epoch_loss[0]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    accuracy = (predict(a, digits.x_test) == digits.y_test).float().mean()
    assert accuracy > 0.9
    assert not a.training


def test_bad_train_config_is_rejected():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")


def test_ensemble_averages_logits():
    members = [CLASSIFIERS.create("mlp", in_shape=(1, 4, 4), num_classes=3) for _ in range(3)]
    ensemble = Ensemble(members)
    x = torch.rand(4, 1, 4, 4)
    torch.testing.assert_close(ensemble(x), torch.stack([m(x) for m in members]).mean(0))
    probs = Ensemble(members, mode="probs")(x).exp()
    torch.testing.assert_close(probs, torch.stack([m(x).softmax(-1) for m in members]).mean(0))
    with pytest.raises(ValueError):
        Ensemble(members[:1])


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    model = CLASSIFIERS.create("lenet", in_shape=(1, 8, 8), num_classes=10)
    data = tensors_to_bytes(model.state_dict())
    path = tmp_path / "ckpt" / "model.pt"
    write_atomic(path, data)
    sha = sha256_bytes(data)
    loaded = load_verified(path, sha)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind

    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError):
        load_verified(path, sha)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    import os

    path = tmp_path / "file.bin"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(path, b"new content")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


class Fixed(torch.nn.Module):
    """A stand-in member whose logits are given."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_vote_ensemble_predicts_the_majority_and_attacks_see_probabilities():
    from robustbench_gan.utils import predict

    members = [Fixed([5.0, 0.0, 0.0]), Fixed([0.0, 1.0, 0.0]), Fixed([0.0, 1.0, 0.0])]
    vote = Ensemble(members, mode="vote")
    x = torch.rand(4, 1, 2, 2)
    assert predict(vote, x).tolist() == [1, 1, 1, 1]  # two of three vote for class 1
    probs = Ensemble(members, mode="probs")
    assert predict(probs, x).tolist() == [0, 0, 0, 0]  # the confident member wins the average
    torch.testing.assert_close(vote(x), probs(x))  # the same differentiable output
    tie = Ensemble([Fixed([3.0, 0.0]), Fixed([0.0, 1.0])], mode="vote")
    assert predict(tie, x).tolist() == [0, 0, 0, 0]  # 1-1 tie: higher average probability


def test_bf16_autocast_training_runs_and_learns(digits):
    torch.manual_seed(0)
    model = CLASSIFIERS.create(
        "lenet", in_shape=digits.shape, num_classes=10, mean=digits.mean, std=digits.std
    )
    history = train_classifier(
        model,
        digits.x_train,
        digits.y_train,
        config=TrainConfig(epochs=3, lr=3e-3),
        seed=0,
        progress=False,
        amp=True,
    )
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32
    assert (predict(model, digits.x_test) == digits.y_test).float().mean() > 0.8


def test_standard_training_is_the_default_objective(digits):
    """No objective and the plain TrainingObjective train the same weights."""
    weights = []
    for objective in (None, TrainingObjective()):
        torch.manual_seed(0)
        model = CLASSIFIERS.create("mlp", in_shape=digits.shape, num_classes=10)
        config = TrainConfig(epochs=1)
        x, y = digits.x_train[:128], digits.y_train[:128]
        train_classifier(model, x, y, config=config, seed=0, objective=objective, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*weights)


def test_models_do_not_import_defenses():
    """The training loop knows objectives, not defenses: no module of models/ imports them."""
    import ast
    from pathlib import Path

    import robustbench_gan.models as package

    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any("defenses" in name for name in names), path.name


def test_madry_cnn_has_the_papers_layers():
    """Madry et al.'s MNIST network: conv5(32), conv5(64), fc(1024): 3,274,634 weights."""
    model = CLASSIFIERS.create("madry_cnn", in_shape=(1, 28, 28), num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (64, (5, 5))]
    assert model.feature_dim == 1024
    assert sum(p.numel() for p in model.parameters()) == 3_274_634
    with pytest.raises(ValueError):
        CLASSIFIERS.create("madry_cnn", in_shape=(1, 28, 28), width=0)
