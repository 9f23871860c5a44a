"""Loading a classifier: [[targets]] given as weights, an archive or a model-zoo name."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..contract.cells import Cell, CellOutput, CellRecord, ModelRef
from ..contract.context import Context
from ..contract.kind import TARGETS, Evaluation
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.suite import Suite
from ..errors import UserError
from ..models.pretrained import (
    ModelSource,
    class_name,
    fingerprint,
    load_classifier,
    state_sha256,
    user_module,
    with_normalization,
)
from ..utils import eval_mode, model_device, predict
from .common import share

# "object:<sha256>" -> a model handed to the Python API, for as long as its caller holds it
IN_MEMORY: weakref.WeakValueDictionary[str, nn.Module] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class LoadSpec(Record):
    """The target entry as JSON (with its files' sha256 under ``fingerprint``)."""

    classifier: dict[str, Any]


@dataclass(frozen=True)
class LoadResult(Record):
    """Clean accuracy, seconds, parameters; for a model of code and a state dict (a file or
    an ``nn.Module``) its class (``module:attr``) and the sha256 of its state dict, which is
    the same for a module and for its weights saved to a file."""

    test_acc: float
    seconds: float
    parameters: int
    architecture: str = ""
    weights_sha256: str = ""


@EVALUATIONS.register
class LoadClassifier(Evaluation):
    """A target that is loaded, not trained: the same weights bit for bit, no training
    cell. The cell checks the files against the sha256 taken when the suite was read and
    measures clean test accuracy; later cells load the model again from its source."""

    kind = "load_classifier"
    key_columns = ("model",)
    gives = (TARGETS,)

    def plan(self, suite: Suite, plan: Plan) -> None:
        for target in suite.targets:
            if not target.loaded:
                continue
            spec = LoadSpec(target.to_json())
            cell = plan.add(self.kind, target.label, f"load {target.label}", spec, ())
            plan.models[target.label] = ModelRef(target.label, target.label, "none", cell)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        start = time.perf_counter()
        model = self.build(cell.spec.classifier, ctx)  # type: ignore[attr-defined]
        label = cell.label.removeprefix("load ")
        try:
            check_outputs(model, ctx.data.x_test[:2], ctx.data.num_classes, label)
            test_acc = share(predict(model, ctx.data.x_test) == ctx.data.y_test)
        except RuntimeError as exc:  # wrong input shape or channel count for this data
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"model {label!r} fails on the data's images "
                f"(shape {tuple(ctx.data.shape)}, values in [0, 1]): {first}"
            ) from None
        parameters = sum(p.numel() for p in model.parameters())
        ctx.loaded[cell.id] = model
        classifier = cell.spec.classifier  # type: ignore[attr-defined]
        own, in_memory = user_module(model), classifier["name"].startswith("object:")
        has_state = in_memory or classifier["load"].get("weights")
        weights = state_sha256(own) if has_state else ""
        architecture = class_name(own) if in_memory else ""
        seconds = time.perf_counter() - start
        result = LoadResult(test_acc, seconds, parameters, architecture, weights)
        return CellOutput(result.to_json())

    def load(self, record: CellRecord, ctx: Context) -> Any:
        return self.build(record.spec["classifier"], ctx)

    def build(self, classifier: dict[str, Any], ctx: Context) -> nn.Module:
        """The model of a target entry's JSON, after checking its files are unchanged."""
        source = source_of(classifier)
        if source.name.startswith("object:"):
            if source.name not in IN_MEMORY:
                raise UserError(
                    f"the model {source.name} is gone: benchmark() holds it only while it runs, "
                    "in this process"
                )
            model = with_normalization(IN_MEMORY[source.name], source)
        else:
            folder = Path(ctx.suite_dir) if ctx.suite_dir else None
            if fingerprint(source, folder) != classifier["fingerprint"]:
                raise UserError(
                    f"the files of model {source.name!r} changed while the run was going on; "
                    "run again to evaluate the new ones"
                )
            inputs = ctx.classifier_inputs()
            model = load_classifier(source, runner_inputs=inputs, base=folder)
        return model.to(ctx.device).eval()


def source_of(classifier: dict[str, Any]) -> ModelSource:
    """The ModelSource of a target entry's JSON (TargetSpec.to_json)."""
    loading = dict(classifier["load"])
    for key in ("mean", "std"):
        if loading.get(key) is not None:
            loading[key] = tuple(loading[key])
    return ModelSource(name=classifier["name"], params=classifier["params"], **loading)


def check_outputs(model: nn.Module, x: Tensor, num_classes: int, label: str) -> None:
    """One forward pass on a few test images ``x`` (eval mode, no grad; the model's modes and
    device are kept): UserError in one line unless it gives finite logits of shape
    ``(len(x), num_classes)``."""
    if not len(x):
        return
    with torch.no_grad(), eval_mode(model):
        out = model(x.to(model_device(model)))
    want = f"want (N, {num_classes}), one score per class"
    if not isinstance(out, Tensor):
        raise UserError(f"model {label!r} gives a {type(out).__name__}, {want}")
    if out.shape != (len(x), num_classes):
        shape = shape_text(out.shape, len(x))
        raise UserError(f"model {label!r} gives outputs of shape {shape}, {want}")
    if not bool(torch.isfinite(out).all()):
        raise UserError(
            f"model {label!r} gives non-finite outputs (NaN or inf) on clean test images"
        )


def shape_text(shape: torch.Size, n: int) -> str:
    """A shape as ``(N, 3)`` when its first size is the batch's ``n``, else as it is and
    for how many images (``(1, 10) for 2 images``)."""
    sizes = ["N" if i == 0 and size == n else str(size) for i, size in enumerate(shape)]
    text = f"({sizes[0]},)" if len(sizes) == 1 else f"({', '.join(sizes)})"
    return text if sizes[:1] == ["N"] else f"{text} for {n} images"
