"""[[targets]] entries: a classifier the suite trains, or a model it loads as it is.

A name of a model zoo (a namespace of CLASSIFIERS registered with a ``target`` reader, see
``registry.Namespace``) is loaded without a weights file; the zoo reads its own keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..contract.configs import TrainConfig
from ..contract.fields import check_kwargs, freeze, split_entry, table, train_config, typed
from ..contract.suite import TargetSpec
from ..errors import UserError
from ..models.archives import is_archive
from ..models.pretrained import ModelSource, fingerprint
from ..registry import CLASSIFIERS, Namespace

IN_MEMORY_PREFIX = "object:"  # an nn.Module handed to benchmark(), kept in this process
RUNNER_INPUTS = ("in_shape", "num_classes", "mean", "std")  # what the runner gives a factory
LOADING_KEYS = (
    "weights", "mean", "std", "features", "dataset", "threat_model", "model_dir", "download",
)  # fmt: skip


def target_spec(
    entry: Mapping[str, Any], index: int, train: TrainConfig, folder: Path, dataset: str
) -> TargetSpec:
    """A trained target (the default) or, with ``weights``, an archive file or a model zoo's
    name, a loaded one; ``folder`` is the suite file's folder (relative paths start there)
    and ``dataset`` the suite's dataset (for a model zoo)."""
    where = f"targets[{index}]"
    name = typed(entry.get("name"), str, f"{where}.name", required=True)
    if not is_loaded(name, entry):
        unexpected = [k for k in LOADING_KEYS if k in entry]
        if unexpected:
            raise UserError(
                f'{unexpected[0]!r} is for loaded models: add weights = "file" to load '
                f"{name}, or remove it to train one",
                where=f"{where}.{unexpected[0]}",
            )
        name, label, params = split_entry(entry, where, reserved=("train",))
        # a registered classifier gets these from the runner; another factory from its entry
        runner_sets = RUNNER_INPUTS if ":" not in name else ()
        check_kwargs(CLASSIFIERS, name, params, where, runner_sets=runner_sets)
        config = train_config(table(entry, "train", where), f"{where}.train", base=train)
        origin = CLASSIFIERS.origin(name)
        return TargetSpec(name, label, freeze(params), where, origin, train=config)
    if "train" in entry:
        raise UserError("a loaded model is used as it is, never trained", where=f"{where}.train")
    _, label, params = split_entry(entry, where, reserved=LOADING_KEYS)
    if "label" not in entry:
        label = default_label(name)
    return loaded_target(entry, where, name, label, params, folder, dataset)


def loaded_target(
    entry: Mapping[str, Any],
    where: str,
    name: str,
    label: str,
    params: Mapping[str, Any],
    folder: Path,
    dataset: str,
) -> TargetSpec:
    """A target loaded as it is: ``entry`` holds the loading keys (weights, mean, ...)."""
    source = ModelSource(
        name=name,
        params=freeze(params),
        weights=typed(entry.get("weights"), str, f"{where}.weights"),
        mean=channel_values(entry.get("mean"), f"{where}.mean"),
        std=channel_values(entry.get("std"), f"{where}.std"),
        features=typed(entry.get("features"), str, f"{where}.features"),
        threat_model=typed(entry.get("threat_model"), str, f"{where}.threat_model"),
        download=typed(entry.get("download", False), bool, f"{where}.download"),
    )
    if (source.mean is None) != (source.std is None):
        raise UserError(
            "mean and std go together", where=f"{where}.{'std' if source.mean else 'mean'}"
        )
    zoo = model_zoo(name)
    if zoo is not None:  # its own keys: where its files are, ...
        source = zoo.target(source, entry, where, folder, dataset)
    in_memory = name.startswith(IN_MEMORY_PREFIX)  # the Python API fingerprints it itself
    try:
        found = {} if in_memory else fingerprint(source, folder)
    except UserError as exc:
        raise exc.at(where) from None
    return TargetSpec(
        name=name,
        label=label,
        params=freeze(params),
        where=where,
        origin=None if in_memory or is_archive(name) else CLASSIFIERS.origin(name),
        source=source,
        fingerprint=freeze(found),
    )


def model_zoo(name: str) -> Namespace | None:
    """The namespace of ``name`` if it is a model zoo's (its names are loaded models)."""
    if ":" not in name:
        return None
    namespace = CLASSIFIERS.namespace(name)
    return namespace if namespace is not None and namespace.target is not None else None


def is_loaded(name: str, entry: Mapping[str, Any]) -> bool:
    """Whether the entry names a model to load (weights, an archive, a model zoo's name)."""
    return "weights" in entry or is_archive(name) or model_zoo(name) is not None


def default_label(name: str) -> str:
    """``models/net.pt2`` -> ``net``; ``torchvision:resnet18`` -> ``resnet18``."""
    if is_archive(name):
        return Path(name).stem
    return name.rpartition(":")[2].rpartition(".")[2]


def channel_values(value: Any, where: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise UserError(f"must be a list of numbers, one per channel, got {value!r}", where=where)
    if where.endswith(".std") and min(value) <= 0:
        raise UserError(f"must be > 0, got {value!r}", where=where)
    return tuple(float(v) for v in value)
