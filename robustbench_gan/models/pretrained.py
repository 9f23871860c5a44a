"""Classifiers that are loaded, not trained: a factory with a state dict, or an archive.

A ``ModelSource`` names the model (see its docstring for the forms of ``name``);
``load_classifier`` builds it on the CPU in eval mode, loads its weights, puts a
normalization layer in front when asked, and names a layer as its penultimate features.
``fingerprint`` gives what a cache key must cover (the files' sha256, the plugin's origin).
The namespaces ``torchvision:NAME`` and ``robustbench:NAME`` of CLASSIFIERS are registered
here; the archive and robustbench loaders live in ``models/archives.py``. Nothing is
downloaded unless a robustbench source says ``download = true``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import sha256_file
from ..errors import UserError
from ..registry import CLASSIFIERS
from ..safe_load import UnreadableFile, load_tensors
from ..utils import takes_keyword
from .archives import (
    ROBUSTBENCH,
    is_archive,
    load_archive,
    load_robustbench,
    resolve_path,
    robustbench_files,
    robustbench_target,
)
from .base import Normalize

TORCHVISION = "torchvision"
RUNNER_INPUTS = ("in_shape", "num_classes", "mean", "std")


@dataclass(frozen=True)
class ModelSource:
    """Where a loaded classifier comes from.

    ``name``: a registered classifier (``small_cnn``, an entry-point plugin), a
    ``module:attr`` factory, ``torchvision:NAME``, ``robustbench:NAME``, or the path of a
    self-contained archive (``*.pt2``: a torch.export program; ``*.pt``, ``*.pth``, ``*.ts``,
    ``*.jit``: TorchScript), which needs no code. ``params``: keyword arguments of the
    factory, as the user wrote them. ``weights``: a state dict file. ``mean``/``std``: when
    given, ``(x - mean) / std`` per channel is put in front of the model; by default the
    model receives images in [0, 1] (RobustBench's convention). ``features``: a submodule
    (``"avgpool"``, ``"layer4"``) whose flattened output serves as penultimate features.
    ``dataset``, ``threat_model``, ``model_dir``, ``download``: for ``robustbench:`` names.
    Relative paths are relative to the ``base`` folder given to the functions below.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    features: str | None = None
    dataset: str | None = None
    threat_model: str | None = None
    model_dir: str | None = None
    download: bool = False


class Pretrained(nn.Module):
    """A loaded model with an optional normalization layer in front of it."""

    def __init__(self, model: nn.Module, normalize: Normalize | None = None) -> None:
        super().__init__()
        self.normalize = normalize
        self.model = model

    def prepare(self, x: Tensor) -> Tensor:
        return x if self.normalize is None else self.normalize(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.prepare(x))


class PretrainedWithFeatures(Pretrained):
    """A loaded model whose ``features(x)`` is a named layer's flattened output (``layer``),
    or the inner model's own ``features`` (``layer`` None)."""

    def __init__(
        self, model: nn.Module, normalize: Normalize | None = None, layer: str | None = None
    ) -> None:
        super().__init__(model, normalize)
        self.layer = layer

    def features(self, x: Tensor) -> Tensor:
        if self.layer is None:
            return self.model.features(self.prepare(x))
        captured: list[Tensor] = []
        module = self.model.get_submodule(self.layer)
        handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            self.model(self.prepare(x))
        finally:
            handle.remove()
        if not captured or not isinstance(captured[-1], Tensor):
            raise UserError(
                f"layer {self.layer!r} gave no tensor during forward (a torch.export or "
                "TorchScript model cannot be hooked: give a model with code instead)"
            )
        return captured[-1].flatten(1)


def has_features(model: nn.Module) -> bool:
    """Whether ``model.features(x)`` gives penultimate features (a method, not a submodule
    such as torchvision VGG's ``features`` block)."""
    attr = getattr(model, "features", None)
    return callable(attr) and not isinstance(attr, nn.Module)


def state_sha256(model: nn.Module | Mapping[str, Tensor]) -> str:
    """sha256 of a module's state dict (or of a state dict): every entry's name, dtype, shape
    and bytes, in name order. The same weights give the same digest as an ``nn.Module`` and
    as a state-dict file read back, whatever the file's name or pickling (a file's own sha256
    differs with those)."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    digest = hashlib.sha256()
    for key, tensor in sorted(state.items()):
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def class_name(model: nn.Module) -> str:
    """A module's class as a ``module:attr`` reference, e.g. ``my_models:Net``."""
    return f"{type(model).__module__}:{type(model).__qualname__}"


def user_module(model: nn.Module) -> nn.Module:
    """The user's own module inside a loaded model (without the normalization in front)."""
    return model.model if isinstance(model, Pretrained) else model


def with_normalization(model: nn.Module, source: ModelSource) -> nn.Module:
    """``model`` with the source's normalization layer in front, if it names one."""
    normalize = _normalization(source)
    if normalize is None:
        return model
    wrapper = PretrainedWithFeatures if has_features(model) else Pretrained
    return wrapper(model, normalize)


def load_classifier(
    source: ModelSource,
    *,
    runner_inputs: Mapping[str, Any] | None = None,
    base: Path | None = None,
) -> nn.Module:
    """The model ``source`` names, on the CPU in eval mode.

    A registered classifier gets ``runner_inputs`` (in_shape, num_classes, mean, std of the
    data) as when it is trained; a ``module:attr`` or ``torchvision:`` factory gets the
    entry's params and only those runner inputs its signature names (params win over a
    runner input of the same name). ``base``: the folder that relative paths (weights,
    archive, robustbench's model_dir) are taken from and ``module:attr`` modules are looked
    up in first (the suite file's). The result gives exactly the outputs of the original
    module with those weights; switching it to train mode changes nothing of an archive.
    """
    if is_archive(source.name):
        if source.params or source.weights is not None or source.features is not None:
            raise UserError(
                f"{source.name} is an archive: it carries its own code and weights, and its "
                "layers cannot be hooked for features (remove params, weights and features)"
            )
        model = load_archive(resolve_path(source.name, base))
    else:
        model = _build(source, dict(runner_inputs or {}), base)
        if source.weights is not None:
            load_weights(model, resolve_path(source.weights, base))
    if source.features is not None:
        _check_layer(model, source.features)
        return PretrainedWithFeatures(model, _normalization(source), source.features).eval()
    return with_normalization(model, source).eval()


def _build(source: ModelSource, runner_inputs: dict[str, Any], base: Path | None) -> nn.Module:
    name, params = source.name, dict(source.params)
    prefix = name.partition(":")[0] if ":" in name else None
    if prefix == ROBUSTBENCH:
        if params or source.weights is not None:
            raise UserError(f"{name}: robustbench models take no params and no weights file")
        model = load_robustbench(
            name.partition(":")[2],
            dataset=source.dataset,
            threat_model=source.threat_model,
            model_dir=source.model_dir,
            download=source.download,
            base=base,
        )
    else:
        factory = CLASSIFIERS.get(name, search=[base] if base is not None else [])
        if prefix is None:
            inputs = runner_inputs  # a registered classifier takes them all, as when trained
        else:
            inputs = {k: v for k, v in runner_inputs.items() if takes_keyword(factory, k)}
        try:
            model = factory(**{**inputs, **params})
        except UserError:
            raise
        except (TypeError, ValueError) as exc:
            raise UserError(f"cannot build classifier {name!r}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"classifier {name!r} built a {type(model).__name__}, not a torch module")
    return model.cpu()


def _normalization(source: ModelSource) -> Normalize | None:
    if source.mean is None and source.std is None:
        return None
    if source.mean is None or source.std is None or len(source.mean) != len(source.std):
        raise UserError("give mean and std together, one value per channel each")
    if any(s <= 0 for s in source.std):
        raise UserError(f"std must be positive, got {list(source.std)}")
    return Normalize(source.mean, source.std)


def _check_layer(model: nn.Module, layer: str) -> None:
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
        shown = close or names[:8]
        listing = ", ".join(repr(n) for n in shown) if shown else "none: it has no submodules"
        more = "" if close or len(names) <= 8 else f", ... ({len(names)} in all)"
        raise UserError(f"the model has no layer {layer!r} for features; layers: {listing}{more}")


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a state dict into ``model`` strictly (``{"state_dict": ...}``, ``{"model": ...}``
    and DataParallel's ``module.`` prefix accepted); mismatches are one-line UserErrors."""
    if not path.is_file():
        raise UserError(f"no weights file at {path}")
    try:
        state = load_tensors(path)
    except UnreadableFile as exc:
        raise UserError(
            f"{path}: not a state dict torch.load can read with weights_only=True "
            f"({exc.reason}); a pickled model must be saved as model.state_dict()"
        ) from None
    for _ in range(3):  # {"model": {"state_dict": ...}} and the like
        if isinstance(state, Mapping):
            inner = state.get("state_dict", state.get("model"))
            if isinstance(inner, Mapping):
                state = inner
                continue
        break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict (a mapping of names to tensors)")
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''} ({len(keys)})"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if keys
    ]
    if problems:
        raise UserError(f"{path} does not fit the model: {'; '.join(problems)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: {' '.join(str(exc).split())}") from None


def fingerprint(source: ModelSource, base: Path | None = None) -> dict[str, Any]:
    """What a cache key must cover for ``source`` beyond its fields: the sha256 of the
    weights file, of an archive, of robustbench's weights file(s) when present, the origin
    of a plugin's code (``Registry.origin``), and the versions of torchvision/robustbench."""
    out: dict[str, Any] = {}
    name = source.name
    if is_archive(name):
        path = resolve_path(name, base)
        if not path.is_file():
            raise UserError(f"no model archive at {path}")
        out["archive_sha256"] = sha256_file(path)
    elif name.startswith(f"{ROBUSTBENCH}:"):
        files = robustbench_files(
            name.partition(":")[2], source.dataset, source.threat_model, source.model_dir, base
        )
        out["robustbench_sha256"] = [sha256_file(f) for f in files]
        out["robustbench"] = _version("robustbench")
    elif name.startswith(f"{TORCHVISION}:"):
        out["torchvision"] = _version("torchvision")
    else:
        origin = CLASSIFIERS.origin(name, search=[base] if base is not None else [])
        if origin is not None:
            out["origin"] = origin
    if source.weights is not None:
        path = resolve_path(source.weights, base)
        if not path.is_file():
            raise UserError(f"no weights file at {path}")
        out["weights_sha256"] = sha256_file(path)
    return out


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# -- the torchvision: namespace -------------------------------------------------
def resolve_torchvision(name: str) -> Callable[..., nn.Module]:
    """The factory of torchvision's classification model ``name``: random initial weights,
    never a download (load a local state dict with ``weights`` instead)."""
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UserError(f"unknown torchvision classification model {name!r}{hint}")

    def build(**params: Any) -> nn.Module:
        for key in ("weights", "pretrained"):
            if params.pop(key, None) not in (None, False):
                raise UserError(
                    f"torchvision:{name}: {key}= would download weights; save them once "
                    'and give the local file as `weights = "path.pth"` instead'
                )
        return tvm.get_model(name, weights=None, **params)

    build.__name__ = build.__qualname__ = f"torchvision_{name}"
    return build


def resolve_robustbench(name: str) -> Callable[..., nn.Module]:
    """The loader of robustbench's model ``name`` (``load_classifier`` passes the source's
    dataset, threat_model, model_dir and download)."""

    def build(**kwargs: Any) -> nn.Module:
        return load_robustbench(name, **kwargs)

    build.__name__ = build.__qualname__ = f"robustbench_{name}"
    return build


CLASSIFIERS.add_namespace(
    TORCHVISION,
    resolve_torchvision,
    about="a torchvision model builder, e.g. torchvision:resnet18 (weights from a file)",
)
CLASSIFIERS.add_namespace(
    ROBUSTBENCH,
    resolve_robustbench,
    about="a RobustBench model zoo entry, from a local copy of its weights",
    target=robustbench_target,
)
