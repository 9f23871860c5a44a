"""What every cell may use while it runs: the data, the device, the store and loaded models.

The store is seen through ``CellStore``, the part of runner/store.py's Store that cells and
executors call: the contract names no runner module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..registry import DEFENSES, Registry
from ..utils import predict, takes_keyword
from .cells import CellRecord
from .data import DataSplit
from .kinds import EVALUATIONS


class CellStore(Protocol):
    """The store as cells and executors use it (runner/store.py's Store is one)."""

    root: Path
    hint: str | None  # set when opened read-only: what to run to compute a missing cell

    def get(self, cell_id: str) -> CellRecord | None: ...
    def artifacts_intact(self, record: CellRecord) -> bool: ...
    def put_artifact(self, data: bytes) -> str: ...
    def put(self, record: CellRecord) -> None: ...
    def load_tensors(self, sha256: str) -> Any: ...
    def close(self) -> None: ...


@dataclass
class Context:
    """What every cell may use: the data, the device, the store and loaded models."""

    data: DataSplit
    device: torch.device
    store: CellStore
    progress: bool = True  # progress bars (on a terminal)
    progress_lines: bool = False  # one line per finished cell instead (output not a terminal)
    eval_batch_size: int = 256
    device_name: str = "cpu"
    versions: str = ""
    data_root: str | None = None  # where other datasets are read (a CycleGAN's other domain)
    force: str | None = None  # cells whose label matches this pattern are recomputed
    suite_dir: str | None = None  # the suite file's folder: relative paths of loaded models
    channels_last: bool = False  # evaluated models in the channels-last memory layout
    loaded: dict[str, Any] = field(default_factory=dict)  # cell id -> model on device
    clean: dict[str, Tensor] = field(default_factory=dict)  # model and n -> clean predictions

    def eval_set(self, n_eval: int | None) -> tuple[Tensor, Tensor]:
        n = len(self.data.x_test) if n_eval is None else min(n_eval, len(self.data.x_test))
        return self.data.x_test[:n], self.data.y_test[:n]

    # -- loading upstream results --------------------------------------------
    def load(self, cell_id: str) -> Any:
        """What finished cell ``cell_id`` gives later cells (a trained classifier or GAN),
        built by the kind that ran it, loaded once and kept on the device."""
        if cell_id not in self.loaded:
            record = self.store.get(cell_id)
            if record is None:
                raise RuntimeError(f"upstream cell {cell_id} has no result")
            self.loaded[cell_id] = EVALUATIONS.get(record.kind).load(record, self)
        return self.loaded[cell_id]

    def model(self, ref: dict[str, Any], seed: int) -> nn.Module:
        """An evaluated model from its plan description (trained, or built by a defense
        given the cell's ``seed``)."""
        if "trained" in ref:
            return self.laid_out(self.load(ref["trained"]))
        members = [self.model(m, seed) for m in ref["members"]]
        build_info = ref["build"]
        extra = (
            {"generator": self.load(build_info["generator"])} if "generator" in build_info else {}
        )
        defense = build_defense(ref["build"]["defense"], extra, seed)
        return self.laid_out(defense.build(members).to(self.device).eval())

    def laid_out(self, model: nn.Module) -> nn.Module:
        """``model`` with its 4-d weights in the channels-last layout where the run asks for
        it (``rbg run --channels-last``): convolutions then take their channels-last kernels,
        whatever the images' layout."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def clean_predictions(self, ref: dict[str, Any], model: nn.Module, x: Tensor) -> Tensor:
        """``model``'s predictions on the first ``len(x)`` evaluation images, computed once per
        model in this process and shared by all its attack cells."""
        key = f"{json.dumps(ref, sort_keys=True)}/{len(x)}"
        if key not in self.clean:
            self.clean[key] = predict(model, x, batch_size=self.eval_batch_size)
        return self.clean[key]

    def classifier_inputs(self) -> dict[str, Any]:
        d = self.data
        return {"in_shape": d.shape, "num_classes": d.num_classes, "mean": d.mean, "std": d.std}

    def generator_inputs(self) -> dict[str, Any]:
        return {"in_shape": self.data.shape, "num_classes": self.data.num_classes}


def build(registry: Registry, spec: dict[str, Any], inputs: dict[str, Any]) -> Any:
    """Create a plugin from its spec; bad values are the user's to fix."""
    try:
        return registry.create(spec["name"], **inputs, **spec["params"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot build {registry.kind} {spec['name']!r}: {exc}") from None


def build_defense(spec: dict[str, Any], extra: dict[str, Any], seed: int) -> Any:
    """A defense from its spec, given the suite's ``seed`` when its factory takes one."""
    if takes_keyword(DEFENSES.get(spec["name"]), "seed"):
        extra = {**extra, "seed": seed}
    return build(DEFENSES, spec, extra)
