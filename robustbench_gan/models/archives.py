"""Models that come with their weights: torch.export and TorchScript archives, robustbench.

Used by ``models/pretrained.py``. An archive is self-contained (``*.pt2``: a program saved
by ``torch.export.save``, with a dynamic batch dimension if it is to see other batch sizes;
``*.pt``, ``*.pth``, ``*.ts``, ``*.jit``: TorchScript saved by ``torch.jit.save``). A
robustbench model is built by the optional ``robustbench`` package from its weights file
``<model_dir>/<dataset>/<threat_model>/<NAME>.pt``, fetched only when ``download`` is true.
Nothing in an archive may run when it is loaded (``archive_check``), and robustbench's
``torch.load`` calls read tensors only (``safe_load``).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..safe_load import check_torch, weights_only_torch_load
from .archive_check import Refused, check_export, check_torchscript

EXPORT_SUFFIXES = (".pt2",)
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
ROBUSTBENCH = "robustbench"
ROBUSTBENCH_DATASETS = ("cifar10", "cifar100", "imagenet")
ROBUSTBENCH_THREATS = ("Linf", "L2", "corruptions", "corruptions_3d")
MODEL_DIR_ENV = "RBG_MODEL_DIR"


def is_archive(name: str) -> bool:
    """Whether the model name is the path of an archive (by its suffix)."""
    return ":" not in name and Path(name).suffix.lower() in EXPORT_SUFFIXES + TORCHSCRIPT_SUFFIXES


def resolve_path(path: str | Path, base: Path | None) -> Path:
    """``path`` with ``~`` expanded, relative to ``base`` (the suite file's folder) if given."""
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() or base is None else Path(base) / resolved


class ExportedModule(nn.Module):
    """A torch.export program as a module. Its train/eval behaviour was fixed when it was
    exported, and the program refuses ``train()``/``eval()``; here they only set the flag,
    so code that switches modes (attacks, ``predict``) works on it."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.program(*args, **kwargs)

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self


def load_archive(path: Path) -> nn.Module:
    """The module saved in an archive, on the CPU; errors are one-line UserErrors. The file
    is read once; its bytes are checked (``archive_check``: nothing in them may run when
    they are loaded) and then loaded, so what is checked is what is loaded."""
    if not path.is_file():
        raise UserError(f"no model archive at {path}")
    export = path.suffix.lower() in EXPORT_SUFFIXES
    kind = "torch.export" if export else "TorchScript"
    check_torch(path)
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UserError(f"{path}: not a {kind} archive (not a zip file)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if export and not any(n.partition("/")[2] == "archive_format" for n in names):
                reason = _hint(names, export) or "it has no archive_format entry"
                raise UserError(f"{path}: cannot load it as a {kind} archive ({reason})")
            (check_export if export else check_torchscript)(archive)
    except (Refused, zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: refusing to load this {kind} archive: {exc}") from None
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export")]
    levels = [logger.level for logger in loggers]  # torch logs a traceback before raising
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():  # torch.jit warns that it is deprecated, and more
            warnings.simplefilter("ignore")
            if export:
                module = ExportedModule(_unlifted(torch.export.load(io.BytesIO(data))))
            else:
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        reason = _hint(names, export) or f"{type(exc).__name__}: {lines[0] if lines else ''}"
        raise UserError(f"{path}: cannot load it as a {kind} archive ({reason})") from None
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    if not isinstance(module, nn.Module):
        raise UserError(f"{path}: the {kind} archive holds a {type(module).__name__}")
    return module


def _unlifted(program: Any) -> nn.Module:
    """``program.module()`` without the guards function: building that one compiles the
    archive's ``guards_code`` (Python source) with ``exec``; the same input checks then run
    as a pre-hook instead. (Torch before 2.9 has neither.)"""
    if "check_guards" in inspect.signature(program.module).parameters:
        return program.module(check_guards=False)
    return program.module()


def _hint(names: list[str], export: bool) -> str:
    """Why a zip file is not the archive its suffix says, when that is recognisable."""
    saved = any(n.endswith("/data.pkl") for n in names)
    if saved and not any(n.endswith(("/constants.pkl", "/archive_format")) for n in names):
        return (
            "it looks like a torch.save file: a state dict goes in `weights`, beside the "
            "name of the code that builds the model"
        )
    if not export and any(n.endswith("/archive_format") for n in names):
        return "it looks like a torch.export program: name it *.pt2"
    return ""


# -- robustbench ----------------------------------------------------------------
def robustbench_path(
    name: str, dataset: str, threat_model: str, model_dir: str, base: Path | None
) -> Path:
    """Where robustbench reads the weights of ``name`` (``corruptions_3d`` shares the
    ``corruptions`` folder)."""
    folder = threat_model.replace("corruptions_3d", "corruptions")
    return resolve_path(model_dir, base) / dataset / folder / f"{name}.pt"


def robustbench_files(
    name: str,
    dataset: str | None,
    threat_model: str | None,
    model_dir: str | None,
    base: Path | None,
) -> list[Path]:
    """The weights file(s) of a robustbench model that exist (ensembles: ``NAME_m*.pt``)."""
    path = robustbench_path(name, *_robustbench_fields(dataset, threat_model, model_dir), base)
    members = re.compile(rf"{re.escape(name)}_m\d+\.pt")
    found = {p for p in path.parent.glob(f"{name}_m*.pt") if members.fullmatch(p.name)}
    return sorted(found | ({path} if path.is_file() else set()))


def _robustbench_fields(
    dataset: str | None, threat_model: str | None, model_dir: str | None
) -> tuple[str, str, str]:
    missing = [
        key
        for key, value in (
            ("dataset", dataset),
            ("threat_model", threat_model),
            ("model_dir", model_dir),
        )
        if not value
    ]
    if missing:
        raise UserError(
            f"a robustbench model needs {', '.join(missing)} "
            '(e.g. dataset = "cifar10", threat_model = "Linf", model_dir = "models")'
        )
    assert dataset and threat_model and model_dir
    if dataset not in ROBUSTBENCH_DATASETS:
        raise UserError(f"robustbench dataset {dataset!r}: one of {list(ROBUSTBENCH_DATASETS)}")
    if threat_model not in ROBUSTBENCH_THREATS:
        raise UserError(
            f"robustbench threat_model {threat_model!r}: one of {list(ROBUSTBENCH_THREATS)}"
        )
    return dataset, threat_model, model_dir


def load_robustbench(
    name: str,
    *,
    dataset: str | None,
    threat_model: str | None,
    model_dir: str | None,
    download: bool = False,
    base: Path | None = None,
) -> nn.Module:
    """robustbench's model ``name`` (its own normalization inside; images in [0, 1]).

    Needs the ``robustbench`` package; reads the weights from ``model_dir`` (relative to
    ``base``) and downloads them only when ``download`` is true.
    """
    dataset, threat_model, model_dir = _robustbench_fields(dataset, threat_model, model_dir)
    try:
        from robustbench.utils import load_model
    except ImportError:
        raise UserError(
            f"robustbench:{name} needs the robustbench package: pip install robustbench "
            '(or pip install "robustbench_gan[robustbench]")'
        ) from None
    path = robustbench_path(name, dataset, threat_model, model_dir, base)
    if not download and not robustbench_files(name, dataset, threat_model, model_dir, base):
        raise UserError(
            f"robustbench:{name}: no weights file at {path}; put the file there, or set "
            "download = true to let robustbench fetch it"
        )
    try:
        with weights_only_torch_load():  # robustbench's torch.load has no weights_only
            model: Any = load_model(
                model_name=name,
                model_dir=str(resolve_path(model_dir, base)),
                dataset=dataset,
                threat_model=threat_model,
            )
    except (KeyError, ValueError) as exc:
        raise UserError(f"robustbench:{name} ({dataset}, {threat_model}): {exc}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"robustbench:{name} gave a {type(model).__name__}, not a torch module")
    return model


def robustbench_target(
    source: Any, entry: Mapping[str, Any], where: str, folder: Path, dataset: str
) -> Any:
    """A ``robustbench:NAME`` ``[[targets]]`` entry's ModelSource with the zoo's own keys:
    ``dataset`` (the suite's by default), ``model_dir`` (relative to the suite file's
    ``folder``, or $RBG_MODEL_DIR) and the ``threat_model`` it requires."""
    from ..contract.fields import typed  # the suite reader imports this package's loaders

    source = dataclasses.replace(
        source,
        dataset=typed(entry.get("dataset", dataset), str, f"{where}.dataset"),
        model_dir=model_dir(entry, where, folder),
    )
    if source.threat_model is None:
        raise UserError(
            'is required for a RobustBench model, e.g. "Linf"', where=f"{where}.threat_model"
        )
    return source


def model_dir(entry: Mapping[str, Any], where: str, folder: Path) -> str:
    """A RobustBench model folder: the entry's ``model_dir`` (relative to the suite file's
    folder) or $RBG_MODEL_DIR."""
    from ..contract.fields import typed

    value = typed(entry.get("model_dir"), str, f"{where}.model_dir")
    if value is not None:
        return str(folder / value)
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return env
    raise UserError(
        f'a RobustBench model needs its model folder: set model_dir = "..." here or '
        f"${MODEL_DIR_ENV} (it holds <dataset>/<threat_model>/<name>.pt)",
        where=f"{where}.model_dir",
    )
