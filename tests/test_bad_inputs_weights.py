"""Files a user gives never run code when read: weights, archives, robustbench's files,
adversarial examples, Inception weights, checkpoints. A file that would is refused in one
line (`rbg: error: <file>: ...`, exit 2) and its payload, which writes a marker file, never
runs; the same archives do run it when torch loads them unchecked (the controls below), and
legitimate archives still load."""

from __future__ import annotations

import io
import json
import pickle
import re
import sys
import types
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from robustbench_gan import safe_load
from robustbench_gan.checkpoint import load_verified, sha256_file
from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.gans.inception import InceptionFeatures
from robustbench_gan.models.pretrained import ModelSource, load_classifier
from robustbench_gan.verify import load_adversarial

OLD_TORCH = "torch 2.5.1 cannot read untrusted .pt files safely (CVE-2025-32434): use torch >= 2.6"


class Payload:
    """Pickles as a call that writes ``marker``: what a malicious pickle does."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def loud_warnings(monkeypatch):
    """Warnings go to stderr as they would outside pytest (which records them instead), so
    a warning torch prints before our error shows up in capsys."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    monkeypatch.setattr(warnings, "showwarning", show)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # the payloads' files, collected late
        yield


def one_line(capsys, args: list[str], *messages: str) -> str:
    """`rbg ARGS` exits 2 with exactly one line on stderr, `rbg: error: ...`."""
    capsys.readouterr()  # what came before
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("rbg: error: "), lines[0]
    for message in messages:
        assert message in lines[0], lines[0]
    return lines[0]


def eval_args(model: str, *more: str) -> list[str]:
    return [
        "eval", "--model", model, *more, "--dataset", "digits", "--eps", "0.1", "--n", "5",
        "--attacks", "fgsm", "--cache-dir", "c", "--out", "o", "--no-progress",
    ]  # fmt: skip


# -- torch.export archives ----------------------------------------------------------
class Linear64(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(nn.Flatten(), nn.Linear(64, 10))


def linear() -> nn.Module:
    torch.manual_seed(0)
    return Linear64().eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real archive of a digits classifier with a dynamic batch dimension."""
    path = tmp_path_factory.mktemp("export") / "net.pt2"
    x = torch.rand(2, 1, 8, 8)
    program = torch.export.export(linear(), (x,), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(program, path)
    return path


def rewrite(source: Path, target: Path, edit) -> Path:
    """A copy of the archive ``source`` with ``edit(entries)`` applied to its entries (names
    without the top folder)."""
    with zipfile.ZipFile(source) as archive:
        top = archive.namelist()[0].partition("/")[0]
        entries = {n.partition("/")[2]: archive.read(n) for n in archive.namelist()}
    edit(entries)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries.items():
            archive.writestr(f"{top}/{name}", data)
    return target


def edit_json(entries: dict[str, bytes], name: str, change) -> None:
    value = json.loads(entries[name])
    change(value)
    entries[name] = json.dumps(value).encode()


def sample_inputs(entries, marker):  # torch.load(weights_only=True), then =False
    entries["data/sample_inputs/model.pt"] = saved(Payload(marker))


def pickled_weight(entries, marker):  # a weight with use_pickle: torch.load(weights_only=False)
    config = "data/weights/model_weights_config.json"
    edit_json(entries, config, lambda c: c["config"]["1.weight"].update(use_pickle=True))
    path = json.loads(entries[config])["config"]["1.weight"]["path_name"]
    entries[f"data/weights/{path}"] = saved(Payload(marker))


def opaque_constant(entries, marker):  # an opaque object: pickle.loads
    meta = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}
    entries["data/constants/model_constants_config.json"] = json.dumps(
        {"config": {"evil": {**meta, "tensor_meta": None}}}
    ).encode()
    entries["data/constants/opaque_obj_0"] = pickle.dumps(Payload(marker))


def sympy_size(entries, marker):  # a symbolic size: sympy.sympify, which evals
    text = entries["models/model.json"].decode()
    size = re.search(r'"expr_str": ("[^"]*")', text)[1]  # Symbol('s..', positive=True, ...)
    code = json.dumps(f"(open({str(marker)!r}, 'w').write('x')) * 0 + {json.loads(size)}")
    entries["models/model.json"] = text.replace(size, code, 1).encode()


def input_name(entries, marker):  # FX writes placeholder names into the code it compiles
    text = entries["models/model.json"].decode()
    specs = json.loads(text)["graph_module"]["signature"]["input_specs"]
    name = next(s["user_input"]["arg"]["as_tensor"]["name"] for s in specs if "user_input" in s)
    injected = f"{name}=open({str(marker)!r}, 'w')"

    def swap(value: Any) -> Any:  # the tensor, not arg names
        if isinstance(value, dict):
            return {
                injected if k == name else k: v if k == "name" and "arg" in value else swap(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [swap(v) for v in value]
        return injected if value == name else value

    entries["models/model.json"] = json.dumps(swap(json.loads(text))).encode()


def graph_call(entries, marker):  # any torch.* callable as a node: os.system via torch.os
    def add(program):
        program["graph_module"]["graph"]["nodes"].insert(0, {
            "target": "torch.os.system", "name": "ran", "outputs": [], "metadata": {},
            "inputs": [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}],
        })  # fmt: skip

    edit_json(entries, "models/model.json", add)


def aoti_code(entries, marker):  # AOTInductor: a shared library, loaded with dlopen
    entries["data/aotinductor/model/model.so"] = b"\x7fELF"


def guards_code(entries, marker):  # module() exec's it into the forward pass
    code = f"open({str(marker)!r}, 'w').write('x') > 0"
    edit_json(entries, "models/model.json", lambda p: p.update(guards_code=[code]))


REFUSED = {
    sample_inputs: "data/sample_inputs/model.pt is a pickle that needs more than tensors",
    pickled_weight: "is a pickle that needs more than tensors: it pickles exec,",
    opaque_constant: "its constant 'evil' is a Python object (opaque_obj_0)",
    sympy_size: "has a size that is not a sympy expression",
    input_name: 'that is not a plain name: "input=open(',
    graph_call: "its graph calls torch.os.system, which is not a torch operator",
    aoti_code: "it holds AOTInductor code",
}
RUN_BY_TORCH = [sample_inputs, pickled_weight, opaque_constant, sympy_size, input_name]


@pytest.mark.parametrize("edit", RUN_BY_TORCH + [guards_code], ids=lambda f: f.__name__)
def test_the_malicious_archives_do_run_code_when_torch_loads_them(exported, tmp_path, edit):
    """The control: torch.export.load unchecked runs every payload (guards_code when the
    module it gives is called)."""
    marker = tmp_path / "marker"
    path = rewrite(exported, tmp_path / "evil.pt2", lambda e: edit(e, marker))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.export.load(path).module()(torch.rand(2, 1, 8, 8))
        except Exception:
            pass
    assert marker.exists()


@pytest.mark.parametrize("edit", list(REFUSED), ids=lambda f: f.__name__)
def test_a_malicious_export_archive_is_refused_in_one_line(exported, tmp_path, monkeypatch, capsys, edit):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    rewrite(exported, tmp_path / "evil.pt2", lambda e: edit(e, marker))
    one_line(capsys, eval_args("evil.pt2"), "evil.pt2: refusing to load this torch.export", REFUSED[edit])  # fmt: skip
    assert not marker.exists() and not list(tmp_path.glob("o/*.csv"))


def test_guards_code_is_never_compiled_and_legit_archives_load(exported, tmp_path):
    marker = tmp_path / "marker"
    evil = rewrite(exported, tmp_path / "guards.pt2", lambda e: guards_code(e, marker))
    x = torch.rand(7, 1, 8, 8)
    for path in (exported, evil):
        model = load_classifier(ModelSource(str(path)))
        assert torch.equal(model(x), linear()(x))  # another batch size: the dynamic dim
    assert not marker.exists()


class Rich(nn.Module):
    """What a real program holds besides weights: a buffer, a constant, a ModuleDict key with
    a dash, a condition, keyword arguments, a dict output."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({"a-b": nn.Linear(64, 10)})
        self.register_buffer("shift", torch.zeros(10))
        self.const = torch.ones(10)

    def forward(self, x, *, scale: float = 1.0):
        out = self.blocks["a-b"](x.flatten(1)) + self.shift + self.const
        out = torch.cond(out.sum() > 0, lambda o: o * 2, lambda o: o - 1, (out,))
        return {"logits": out * scale, "half": (out * scale) // 2}


def test_a_program_with_more_than_weights_loads(tmp_path):
    torch.manual_seed(0)
    model, x = Rich().eval(), torch.rand(3, 1, 8, 8)
    batch = torch.export.Dim("batch", min=2, max=64)
    dims = {"x": {0: batch}, "scale": None}
    program = torch.export.export(model, (x,), {"scale": 2.0}, dynamic_shapes=dims)
    torch.export.save(program, tmp_path / "rich.pt2")
    loaded = load_classifier(ModelSource("rich.pt2"), base=tmp_path)
    y = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded(y, scale=2.0)["logits"], model(y, scale=2.0)["logits"])


# -- TorchScript ----------------------------------------------------------------------
class Restores(nn.Module):
    """TorchScript runs ``__setstate__`` while loading; this one writes a file."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10]

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        torch.save(torch.zeros(1), self.marker)


class Writes(nn.Module):
    """No __setstate__; the forward pass writes a file."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.marker)
        return x.flatten(1)[:, :10]


def test_torchscript_that_runs_or_writes_when_loaded_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(Restores(str(marker))).save("restores.pt")
        torch.jit.script(Writes(str(marker))).save("writes.ts")
        marker.unlink(missing_ok=True)
        torch.jit.load("restores.pt")  # the control: torch runs it
        assert marker.exists()
        marker.unlink()
    one_line(capsys, eval_args("restores.pt"), "restores.pt: refusing to load this TorchScript", "defines __setstate__")  # fmt: skip
    one_line(capsys, eval_args("writes.ts"), "writes.ts: refusing", "uses save")
    assert not marker.exists()


# -- --weights and other torch.load files ----------------------------------------------
WEIGHTS = {
    "plain_pickle": lambda marker: pickle.dumps({"a": 1}),
    "pickled_module": lambda marker: saved(nn.Linear(2, 2)),
    "payload_pickle": lambda marker: pickle.dumps(Payload(marker)),
    "payload_torch_save": lambda marker: saved(Payload(marker)),
}


@pytest.mark.parametrize("kind", sorted(WEIGHTS))
def test_a_weights_file_that_is_no_state_dict_is_one_line(tmp_path, monkeypatch, capsys, kind):
    """No warning line from torch before the error, and no payload run."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    (tmp_path / "w.pt").write_bytes(WEIGHTS[kind](marker))
    line = one_line(capsys, eval_args("small_cnn", "--weights", "w.pt"), "w.pt: not a state dict")
    assert "weights_only=True" in line and "\x1b" not in line
    if kind == "payload_torch_save":
        assert "it pickles exec, which weights_only=True does not allow" in line
    assert not marker.exists()


def test_check_torch_compares_versions_as_numbers(monkeypatch):
    for version in ("2.6.0", "2.10.1", "2.14.1+cu130", "3.0"):
        monkeypatch.setattr(safe_load, "torch_version", lambda v=version: v)
        safe_load.check_torch("f.pt")
    for version in ("2.5.1", "2.5.1+cu121", "1.13.1", "unknown"):
        monkeypatch.setattr(safe_load, "torch_version", lambda v=version: v)
        with pytest.raises(UserError, match=r"f.pt: torch .* \(CVE-2025-32434\): use torch >= 2.6"):
            safe_load.check_torch("f.pt")


def fake_robustbench(monkeypatch) -> None:
    """A robustbench whose load_model reads the file as the real one does: torch.load without
    weights_only (here made unsafe again by torch's own switch for old code)."""
    package, utils = types.ModuleType("robustbench"), types.ModuleType("robustbench.utils")

    def load_model(model_name, model_dir, dataset, threat_model):
        state = torch.load(Path(model_dir, dataset, threat_model, f"{model_name}.pt"), map_location="cpu")  # fmt: skip
        model = Linear64()
        model.load_state_dict(state)
        return model

    utils.load_model = load_model  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "robustbench", package)
    monkeypatch.setitem(sys.modules, "robustbench.utils", utils)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def test_robustbench_files_are_read_as_tensors_only(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    fake_robustbench(monkeypatch)
    folder = tmp_path / "m" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    source = ModelSource("robustbench:Evil", dataset="cifar10", threat_model="Linf", model_dir="m")
    (folder / "Evil.pt").write_bytes(saved(Payload(marker)))
    with pytest.raises(UserError, match=r"Evil.pt: .*it pickles exec") as err:
        load_classifier(source, base=tmp_path)
    assert "\n" not in str(err.value) and not marker.exists()
    assert torch.load is torch.serialization.load  # the patch is gone again
    (folder / "Evil.pt").write_bytes(saved(linear().state_dict()))  # a state dict loads
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(load_classifier(source, base=tmp_path)(x), linear()(x))


def readers(tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """Every reader of a user's torch file, each given a file it reads (on a safe torch)."""
    state = linear().state_dict()
    (tmp_path / "w.pt").write_bytes(saved(state))
    (tmp_path / "adv.pt").write_bytes(saved(torch.rand(2, 1, 8, 8)))
    torch.jit.script(linear()).save(tmp_path / "net.ts")
    fake_robustbench(monkeypatch)
    folder = tmp_path / "m" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    (folder / "Good.pt").write_bytes(saved(state))
    robust = ModelSource("robustbench:Good", dataset="cifar10", threat_model="Linf", model_dir="m")
    return {
        "weights": lambda: load_classifier(
            ModelSource(f"{__name__}:Linear64", weights="w.pt"), base=tmp_path
        ),  # fmt: skip
        "archive": lambda: load_classifier(ModelSource("net.ts"), base=tmp_path),
        "robustbench": lambda: load_classifier(robust, base=tmp_path),
        "adversarial": lambda: load_adversarial(tmp_path / "adv.pt"),
        "inception": lambda: InceptionFeatures(tmp_path / "w.pt"),
        "checkpoint": lambda: load_verified(tmp_path / "w.pt", sha256_file(tmp_path / "w.pt")),
    }


def test_every_reader_refuses_on_torch_before_2_6(tmp_path, monkeypatch, capsys, exported):
    found = readers(tmp_path, monkeypatch)
    found["export"] = lambda: load_classifier(ModelSource(str(exported)))
    for read in found.values():  # each reads its file on this torch ...
        try:
            read()
        except UserError as exc:
            assert "CVE" not in str(exc)  # (the Inception net refuses these weights)
    monkeypatch.setattr(safe_load, "torch_version", lambda: "2.5.1")
    for name, read in found.items():  # ... and refuses it on torch 2.5
        with pytest.raises(UserError) as err:
            read()
        assert OLD_TORCH in str(err.value) and "\n" not in str(err.value), name
    monkeypatch.chdir(tmp_path)
    args = ["verify", "--model", f"{__name__}:Linear64", "--weights", "w.pt", "--adv", "adv.pt",
            "--dataset", "digits", "--eps", "0.1"]  # fmt: skip
    one_line(capsys, args, OLD_TORCH)
