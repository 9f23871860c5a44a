"""Loaded classifiers: factories with state dicts, archives, torchvision and robustbench names."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from robustbench_gan.errors import UserError
from robustbench_gan.models.base import Normalize
from robustbench_gan.models.pretrained import (
    ModelSource,
    fingerprint,
    has_features,
    load_classifier,
)
from robustbench_gan.registry import CLASSIFIERS

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated

RUNNER = {"in_shape": (1, 8, 8), "num_classes": 10, "mean": (0.5,), "std": (0.25,)}

NETS = '''
import robustbench_gan
import torch
from torch import nn


class Net(nn.Module):
    """No arguments at all, no features() method."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@robustbench_gan.plugin  # a factory function is named in a suite only when marked
def make(num_classes, width=4):
    """Names num_classes explicitly: gets the runner's; never in_shape."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, num_classes))
'''


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def nets(tmp_path: Path):
    """``my_nets.py`` in a folder that is not on sys.path."""
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "my_nets.py").write_text(NETS)
    yield folder
    for name in [m for m in sys.modules if m == "my_nets"]:
        del sys.modules[name]


def reference(factory: Any, seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return factory().eval()


def test_registered_classifier_gets_runner_inputs_and_weights_bit_for_bit(tmp_path, images):
    torch.manual_seed(3)
    original = CLASSIFIERS.create("small_cnn", width=8, **RUNNER).eval()
    torch.save(original.state_dict(), tmp_path / "w.pt")
    source = ModelSource("small_cnn", params={"width": 8}, weights="w.pt")
    model = load_classifier(source, runner_inputs=RUNNER, base=tmp_path)
    assert not model.training
    assert torch.equal(model(images), original(images))
    assert has_features(model)
    assert torch.equal(model.features(images), original.features(images))


def test_module_attr_class_without_arguments_from_the_suite_folder(nets, images):
    model = load_classifier(ModelSource("my_nets:Net"), runner_inputs=RUNNER, base=nets)
    assert type(model).__name__ == "Net" and not has_features(model)
    made = load_classifier(ModelSource("my_nets:make", params={"width": 6}), runner_inputs=RUNNER)
    assert made(images).shape == (5, 10)  # num_classes from the runner, no in_shape passed


def test_state_dict_wrappers_and_dataparallel_prefix(nets, tmp_path, images):
    net_class = load_classifier(ModelSource("my_nets:Net"), base=nets).__class__
    original = reference(net_class)
    wrapped = {
        "a.pt": original.state_dict(),
        "b.pt": {"state_dict": {f"module.{k}": v for k, v in original.state_dict().items()}},
        "c.pt": {"model": original.state_dict(), "epoch": 3},
    }
    for name, state in wrapped.items():
        torch.save(state, tmp_path / name)
        model = load_classifier(ModelSource("my_nets:Net", weights=name), base=tmp_path)
        assert torch.equal(model(images), original(images)), name


def test_weights_that_do_not_fit_are_one_line_errors(tmp_path):
    state = Tiny().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(UserError) as err:
        load_classifier(ModelSource(f"{__name__}:Tiny", weights="bad.pt"), base=tmp_path)
    message = str(err.value)
    assert "missing: fc.bias" in message and "unexpected: extra.weight" in message
    assert "\n" not in message
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "shape.pt")
    with pytest.raises(UserError, match=r"shape: conv.weight \(2,\) vs \(4, 1, 3, 3\)"):
        load_classifier(ModelSource(f"{__name__}:Tiny", weights="shape.pt"), base=tmp_path)
    torch.save(Tiny(), tmp_path / "pickled.pt")  # a whole model is refused by weights_only
    with pytest.raises(UserError, match="weights_only") as err:
        load_classifier(ModelSource(f"{__name__}:Tiny", weights="pickled.pt"), base=tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="no weights file"):
        load_classifier(ModelSource(f"{__name__}:Tiny", weights="nothing.pt"), base=tmp_path)


def test_normalization_in_front_and_features_from_a_named_layer(tmp_path, images):
    original = reference(Tiny)
    torch.save(original.state_dict(), tmp_path / "w.pt")
    source = ModelSource(
        f"{__name__}:Tiny", weights=str(tmp_path / "w.pt"), mean=(0.4,), std=(0.2,)
    )
    plain = load_classifier(source)
    normalized = Normalize((0.4,), (0.2,))(images)
    assert torch.equal(plain(images), original(normalized))
    assert not has_features(plain)  # Tiny has no features() and none was named

    model = load_classifier(ModelSource(**{**source.__dict__, "features": "pool"}))
    assert has_features(model)
    assert torch.equal(model(images), original(normalized))
    expected = original.pool(torch.relu(original.bn(original.conv(normalized)))).flatten(1)
    assert torch.equal(model.features(images), expected)
    images.requires_grad_(True)
    model.features(images).sum().backward()  # features keep the graph for feature attacks
    assert images.grad is not None

    with pytest.raises(UserError, match="no layer 'poo'.*'pool'"):
        load_classifier(ModelSource(f"{__name__}:Tiny", features="poo"))
    with pytest.raises(UserError, match="mean and std together"):
        load_classifier(ModelSource(f"{__name__}:Tiny", mean=(0.5,)))


def test_torchvision_names_build_without_downloading(tmp_path):
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    original = load_classifier(ModelSource("torchvision:resnet18", params={"num_classes": 7}))
    torch.save(original.state_dict(), tmp_path / "r18.pth")
    source = ModelSource(
        "torchvision:resnet18", params={"num_classes": 7}, weights="r18.pth", features="avgpool"
    )
    model = load_classifier(source, runner_inputs=RUNNER, base=tmp_path)  # no in_shape passed
    assert torch.equal(model(x), original(x))
    assert model.features(x).shape == (2, 512)
    vgg = load_classifier(ModelSource("torchvision:vgg11", params={"num_classes": 3}))
    assert not has_features(vgg)  # VGG's `features` is a block of layers, not a method
    with pytest.raises(UserError, match="local file"):
        load_classifier(ModelSource("torchvision:resnet18", params={"weights": "DEFAULT"}))
    with pytest.raises(UserError, match="did you mean 'resnet18'"):
        load_classifier(ModelSource("torchvision:resnet1"))
    with pytest.raises(UserError, match="cannot build classifier"):
        load_classifier(ModelSource("torchvision:resnet18", params={"nonsense": 1}))


def test_archives_need_no_code_and_give_the_same_outputs(tmp_path, images):
    original = reference(Tiny)
    batch = torch.export.Dim("batch")
    program = torch.export.export(original, (images[:2],), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "tiny.pt2")
    torch.jit.script(original).save(tmp_path / "scripted.pt")
    torch.jit.trace(original, images[:2]).save(tmp_path / "traced.ts")
    for name in ("tiny.pt2", "scripted.pt", "traced.ts"):
        model = load_classifier(ModelSource(name), base=tmp_path)
        assert torch.equal(model(images), original(images)), name
        model.train()  # attacks switch modes; an exported program refuses that by itself
        assert torch.equal(model.eval()(images), original(images)), name
    normalized = load_classifier(ModelSource("tiny.pt2", mean=(0.5,), std=(0.5,)), base=tmp_path)
    assert torch.equal(normalized(images), original((images - 0.5) / 0.5))

    with pytest.raises(UserError, match="no model archive at"):
        load_classifier(ModelSource("missing.pt2"), base=tmp_path)
    torch.save(original.state_dict(), tmp_path / "state.pt")
    with pytest.raises(UserError, match="state.pt: cannot load.*torch.save file") as err:
        load_classifier(ModelSource("state.pt"), base=tmp_path)
    assert "\n" not in str(err.value)
    torch.save(original.state_dict(), tmp_path / "state.pt2")
    with pytest.raises(UserError, match="state.pt2: cannot load.*torch.save file"):
        load_classifier(ModelSource("state.pt2"), base=tmp_path)
    (tmp_path / "text.ts").write_text("not a zip")
    with pytest.raises(UserError, match="not a TorchScript archive"):
        load_classifier(ModelSource("text.ts"), base=tmp_path)
    with pytest.raises(UserError, match="archive"):
        load_classifier(ModelSource("tiny.pt2", features="fc"), base=tmp_path)


# -- robustbench ------------------------------------------------------------------
def robustbench_source(tmp_path: Path, **overrides: Any) -> ModelSource:
    fields = {"dataset": "cifar10", "threat_model": "Linf", "model_dir": str(tmp_path / "m")}
    return ModelSource("robustbench:Carmon2019Unlabeled", **{**fields, **overrides})


@pytest.fixture
def fake_robustbench(monkeypatch):
    """A ``robustbench`` package whose ``utils.load_model`` records its arguments."""
    calls: list[dict[str, Any]] = []
    package = types.ModuleType("robustbench")
    utils = types.ModuleType("robustbench.utils")

    def load_model(**kwargs: Any) -> nn.Module:
        calls.append(kwargs)
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10)).eval()

    utils.load_model = load_model  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "robustbench", package)
    monkeypatch.setitem(sys.modules, "robustbench.utils", utils)
    return calls


def test_every_archive_kind_can_be_attacked(tmp_path, images):
    """A scripted or traced module has no ``requires_grad_``: freezing it for an attack went
    through it and crashed `rbg eval --model net.ts`."""
    from robustbench_gan.registry import ATTACKS

    original = reference(Tiny)
    torch.jit.script(original).save(tmp_path / "scripted.pt")
    torch.jit.trace(original, images[:2]).save(tmp_path / "traced.ts")
    batch = torch.export.Dim("batch")
    program = torch.export.export(original, (images[:2],), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "tiny.pt2")
    y = original(images).argmax(1)
    for name in ("scripted.pt", "traced.ts", "tiny.pt2"):
        model = load_classifier(ModelSource(name), base=tmp_path)
        result = ATTACKS.create("pgd", steps=2)(model, images, y, [0.1])
        assert result.adv.shape == (1, *images.shape), name
        assert all(p.requires_grad for p in model.parameters()), name  # given back as it was


def test_robustbench_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "robustbench", None)  # import robustbench -> ImportError
    monkeypatch.setitem(sys.modules, "robustbench.utils", None)
    with pytest.raises(UserError, match="pip install robustbench") as err:
        load_classifier(robustbench_source(tmp_path))
    assert "\n" not in str(err.value)


def test_robustbench_without_the_weights_file_says_where_to_put_it(tmp_path, fake_robustbench):
    with pytest.raises(UserError) as err:
        load_classifier(robustbench_source(tmp_path))
    expected = tmp_path / "m" / "cifar10" / "Linf" / "Carmon2019Unlabeled.pt"
    assert str(expected) in str(err.value) and "download = true" in str(err.value)
    assert fake_robustbench == []
    with pytest.raises(UserError, match="needs threat_model"):
        load_classifier(robustbench_source(tmp_path, threat_model=None))
    with pytest.raises(UserError, match="no params"):
        load_classifier(
            ModelSource(**{**robustbench_source(tmp_path).__dict__, "params": {"a": 1}})
        )


def test_robustbench_loads_through_its_load_model(tmp_path, fake_robustbench):
    weights = tmp_path / "m" / "cifar10" / "L2" / "Carmon2019Unlabeled.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    source = robustbench_source(tmp_path, threat_model="L2", model_dir="m")
    model = load_classifier(source, runner_inputs=RUNNER, base=tmp_path)
    assert model(torch.rand(2, 3, 4, 4)).shape == (2, 10)
    assert fake_robustbench == [
        {
            "model_name": "Carmon2019Unlabeled",
            "model_dir": str(tmp_path / "m"),
            "dataset": "cifar10",
            "threat_model": "L2",
        }
    ]
    first = fingerprint(source, tmp_path)
    weights.write_bytes(b"other weights")
    assert fingerprint(source, tmp_path) != first
    load_classifier(
        robustbench_source(tmp_path, model_dir="elsewhere", download=True), base=tmp_path
    )
    assert len(fake_robustbench) == 2  # download = true: robustbench fetches the file itself


# -- fingerprints -----------------------------------------------------------------
def test_fingerprint_follows_the_files(tmp_path, nets):
    torch.save(Tiny().state_dict(), tmp_path / "w.pt")
    source = ModelSource(f"{__name__}:Tiny", weights="w.pt")
    first = fingerprint(source, tmp_path)
    assert set(first) == {"origin", "weights_sha256"}
    torch.save(Tiny().state_dict(), tmp_path / "w.pt")  # new random weights
    assert fingerprint(source, tmp_path)["weights_sha256"] != first["weights_sha256"]

    archive = tmp_path / "a.ts"
    torch.jit.script(Tiny()).save(archive)
    before = fingerprint(ModelSource("a.ts"), tmp_path)
    torch.jit.script(Tiny()).save(archive)
    assert fingerprint(ModelSource(str(archive))) != before

    code = ModelSource("my_nets:Net")
    origin = fingerprint(code, nets)["origin"]
    assert origin["module"] == "my_nets"
    (nets / "my_nets.py").write_text(NETS + textwrap.dedent("\n\nCHANGED = True\n"))
    assert fingerprint(code, nets)["origin"]["sha256"] != origin["sha256"]

    assert fingerprint(ModelSource("small_cnn")) == {}  # built in: the code version covers it
    assert "torchvision" in fingerprint(ModelSource("torchvision:resnet18"))
    with pytest.raises(UserError, match="no weights file"):
        fingerprint(ModelSource("small_cnn", weights="gone.pt"), tmp_path)


def test_benchmark_asks_a_model_zoo_for_its_own_threat_model(tmp_path, monkeypatch):
    """`rbg eval --model robustbench:NAME --threat-model L2` loads the zoo's L2 model: the
    benchmark's threat model is the zoo entry's (it was never passed, so every zoo model
    failed with "threat_model is required")."""
    from robustbench_gan.api_suite import benchmark_suite

    weights = tmp_path / "m" / "cifar10" / "L2" / "Standard.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    monkeypatch.setenv("RBG_MODEL_DIR", str(tmp_path / "m"))
    common = {"dataset": "cifar10", "eps": 0.5, "n_examples": 8, "attacks": ["pgd"]}
    suite = benchmark_suite(
        "robustbench:Standard", threat_model="L2", batch_size=8, seed=0, folder=tmp_path, **common
    )
    source = suite.targets[0].source
    assert (source.threat_model, source.dataset) == ("L2", "cifar10")
    linf = benchmark_suite(
        "robustbench:Standard", threat_model="linf", batch_size=8, seed=0, folder=tmp_path,
        **common,
    )  # fmt: skip
    assert linf.targets[0].source.threat_model == "Linf"  # the zoo's spelling
    assert linf.targets[0].fingerprint != suite.targets[0].fingerprint  # other files
