"""The one-model suite of ``benchmark()`` and ``rbg eval``, built from their typed arguments.

Each argument is checked once, where it is turned into its part of the Suite (the frozen
dataclasses of contract/suite.py), by the same functions a suite file's entries go through
(suite/specs.py, suite/targets.py); nothing is written as a suite table to be read again.
A suite field's error, from here or from the run, is said as the argument that set it
(``located``: ``dataset.path`` -> ``dataset_params.path``), and `rbg eval` says it as its
option (``as_options``).

The preset ``attacks="standard"`` is the attack registered with that preset (AutoAttack's
standard version), run under the preset's name; the core names no plugin.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from .contract.configs import TrainConfig
from .contract.fields import freeze, no_relabelled_copies, parse_eps, typed, unique_labels
from .contract.norms import Norm
from .contract.schema import ROBUSTNESS_TABLE_KEYS
from .contract.suite import AttackSpec, Suite, TargetSpec
from .errors import UserError
from .evaluations.load_classifier import IN_MEMORY
from .registry import ATTACKS, CLASSIFIERS
from .suite.eval_folder import SUITE_FILE
from .suite.load import GAN_METRIC_SAMPLES, with_sections
from .suite.specs import attack_plugin, dataset_plugin
from .suite.targets import IN_MEMORY_PREFIX, default_label, loaded_target
from .utils import takes_keyword

STANDARD = "standard"  # the attack preset benchmark() runs by default
DESCRIPTION = "One model on the first n test images of the official split."
# a field of the built suite -> the argument that set it (the rest: see argument_of)
ARGUMENTS = {
    "seed": "seed", "eval.eps": "eps", "eval.n": "n_examples", "eval.batch_size": "batch_size",
    "dataset": "dataset", "dataset.name": "dataset", "model.weights": "weights",
    "model.mean": "mean", "model.std": "std",
}  # fmt: skip
# the text of an error meant for a suite file -> what the user of benchmark() does instead
SUITE_ADVICE = {
    "set download = true in the suite's [dataset] section": "add download=True to dataset_params"
}
FLAGS = {  # benchmark()'s arguments as `rbg eval`'s options
    "model": "--model", "weights": "--weights", "params": "--param", "mean": "--mean",
    "std": "--std", "dataset": "--dataset", "dataset_params": "--dataset-param",
    "threat_model": "--threat-model", "eps": "--eps", "n_examples": "--n",
    "attacks": "--attacks", "batch_size": "--batch-size", "seed": "--seed",
    **dict(zip(ROBUSTNESS_TABLE_KEYS, ("--corruption-param", "--certify-param"))),
}  # fmt: skip
FLAG_ADVICE = {"add download=True to dataset_params": "add --dataset-param download=true"}


def benchmark_suite(
    model: nn.Module | str,
    *,
    dataset: str,
    threat_model: str,
    eps: float | str,
    n_examples: int,
    attacks: str | Sequence[str],
    batch_size: int,
    seed: int,
    weights: str | Path | None = None,
    params: dict[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    folder: Path | None = None,
    dataset_params: dict[str, Any] | None = None,
    sections: Mapping[str, Any] | None = None,
) -> Suite:
    """The one-model suite ``benchmark`` and ``rbg eval`` run (paths relative to ``folder``,
    the working directory by default); ``sections``: the kinds' tables of a suite file
    (``{"corruptions": {...}, "certify": {...}}``). A UserError names the argument at fault."""
    folder = folder or Path.cwd()
    parsed = Norm.parse(threat_model)
    if parsed is None:
        raise UserError(f"must be Linf or L2, got {threat_model!r}", where="threat_model")
    norm = parsed.value
    budget = parse_eps(eps, "eps")
    if norm == "linf" and budget > 1:
        raise UserError(
            f"eps {budget:g} is above 1: Linf budgets are on the [0, 1] pixel scale "
            "(0-255 scale? write 8/255 for 8 grey levels)",
            where="eps",
        )
    if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        raise UserError(f"must be a positive integer, got {n_examples!r}", where="n_examples")
    options = dataset_options(dataset_params)
    requested = attack_requests(attacks, norm)
    if not 0 <= typed(seed, int, "seed") < 2**63:
        raise UserError(f"must be a whole number >= 0, got {seed}", where="seed")
    try:
        data = dataset_plugin(typed(dataset, str, "dataset"), {**options, "test_only": True})
        if typed(batch_size, int, "batch_size") < 1:
            raise UserError(f"must be >= 1, got {batch_size}", where="batch_size")
        specs = attack_specs(requested, budget)
        target = model_target(
            model, weights, params or {}, mean, std, folder, data.name, threat_model=parsed
        )
    except UserError as exc:
        raise located(exc, folder / SUITE_FILE) from None
    suite = Suite(
        path=folder / SUITE_FILE,
        name=f"benchmark-{target.label}",
        description=DESCRIPTION,
        seed=seed,
        dataset=data,
        train=TrainConfig(),
        eps=(budget,),
        n_eval=n_examples,
        eval_batch_size=batch_size,
        targets=(target,),
        generators=(),
        defenses=(),
        attacks=specs,
        judge=None,
        gan_metric_samples=GAN_METRIC_SAMPLES,
    )
    try:  # the kinds' settings (none: what a suite without their tables gets)
        return with_sections(suite, sections or {})
    except UserError as exc:
        raise located(exc, folder / SUITE_FILE) from None


def dataset_options(params: dict[str, Any] | None) -> dict[str, Any]:
    """The dataset's options as a suite's ``[dataset]`` keys; ``name`` and ``test_only``
    are the benchmark's own (the official test split of the dataset named)."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise UserError("must be a dict of option names to values", where="dataset_params")
    fixed = sorted({"name", "test_only"} & set(params))
    if fixed:
        raise UserError(
            f"cannot set {', '.join(fixed)}: the benchmark evaluates the official test split "
            "of the dataset named by `dataset`",
            where="dataset_params",
        )
    return dict(params)


def attack_requests(
    attacks: str | Sequence[str], norm: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """``attacks`` as (name, label, parameters) per attack: a preset's registered attack
    under the preset's name, or each attack named under its own name; an attack of both
    norms runs the one asked."""
    presets = "".join(f"{p!r} or " for p in ATTACKS.presets())
    if isinstance(attacks, str):
        preset = ATTACKS.preset(attacks)
        if preset is None:
            raise UserError(f"must be {presets}a list of attack names", where="attacks")
        requests = [(preset[0], attacks, dict(preset[1]))]
    elif not attacks or not all(isinstance(a, str) for a in attacks):
        raise UserError(f"must be {presets}a non-empty list of attack names", where="attacks")
    else:
        requests = [(name, name, {}) for name in attacks]
    for name, _, params in requests:
        try:
            factory = ATTACKS.get(name)
        except UserError as exc:
            raise exc.at("attacks") from None
        if takes_keyword(factory, "norm"):
            params["norm"] = norm
    return requests


def attack_specs(
    requests: list[tuple[str, str, dict[str, Any]]], budget: float
) -> tuple[AttackSpec, ...]:
    """The attacks, each at the budget given, checked as a suite's ``[[attacks]]`` are."""
    specs = tuple(
        attack_plugin(name, label, params, f"attacks[{i}]", [budget], (budget,))
        for i, (name, label, params) in enumerate(requests)
    )
    unique_labels(specs, "attacks")
    no_relabelled_copies(specs, "attack")
    return specs


def model_target(
    model: nn.Module | str,
    weights: str | Path | None,
    params: dict[str, Any],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    folder: Path,
    dataset: str,
    *,
    threat_model: Norm | None = None,
) -> TargetSpec:
    """The benchmarked model as a loaded target; an ``nn.Module`` is kept in this process
    and identified by the sha256 of its class and weights. A model zoo's name (a namespace
    with a target reader) is the zoo's model for the benchmark's ``threat_model``."""
    entry: dict[str, Any] = {}
    zoo = CLASSIFIERS.namespace(model) if isinstance(model, str) and ":" in model else None
    if zoo is not None and zoo.target is not None and threat_model is not None:
        entry["threat_model"] = threat_model.display
    if weights is not None:
        if not (folder / weights).is_file():
            raise UserError(f"no weights file at {folder / weights}", where="weights")
        entry["weights"] = str(weights)
    if (mean is None) != (std is None):
        raise UserError(
            "must be given too: mean and std go together", where="std" if mean else "mean"
        )
    if mean is not None:
        entry["mean"], entry["std"] = list(mean), list(std or ())
    if isinstance(model, str):
        label = default_label(model)
        return loaded_target(entry, "model", model, label, freeze(params), folder, dataset)
    if not isinstance(model, nn.Module):
        raise UserError(
            f"must be an nn.Module or a model name, got {type(model).__name__}", where="model"
        )
    if weights is not None or params:
        raise UserError("go with a model name, not an nn.Module", where="weights and params")
    sha256 = module_sha256(model)
    name = f"{IN_MEMORY_PREFIX}{sha256}"
    IN_MEMORY[name] = model
    target = loaded_target(entry, "model", name, type(model).__name__, freeze({}), folder, dataset)
    return dataclasses.replace(target, fingerprint=freeze({"object_sha256": sha256}))


def module_sha256(model: nn.Module) -> str:
    """sha256 of a module's class and every tensor of its state dict."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# -- errors: the arguments given, not the suite built from them ---------------------------------
def located(exc: UserError, suite_path: Path) -> UserError:
    """``exc`` located at the argument of ``benchmark`` that set the field it names (the
    built suite has no file the user could edit), with suite-file advice made the user's."""
    where = exc.where
    if where is not None and where.startswith(str(suite_path)):
        where = where[len(str(suite_path)) :].lstrip(": ") or None
    message = exc.message
    for text, advice in SUITE_ADVICE.items():
        message = message.replace(text, advice)
    return UserError(message, where=None if where is None else argument_of(where))


def argument_of(where: str) -> str:
    """``dataset.path`` -> ``dataset_params.path``, ``attacks[1].steps`` -> ``attacks``, ..."""
    head, _, rest = where.partition(": ")  # a field, then maybe a place within its value
    field = ARGUMENTS.get(head)
    if field is None and head.startswith("dataset."):
        field = "dataset_params." + head.removeprefix("dataset.")
    elif field is None and head.startswith(("attacks[", "attacks.")):
        field = "attacks"
    elif field is None and head.startswith(("model.", "targets[")):
        field = "model"
    return where if field is None else f"{field}: {rest}" if rest else field


def as_options(exc: UserError) -> UserError:
    """A ``benchmark`` error as `rbg eval` says it: the argument as its option."""
    where = exc.where
    if where is not None:
        field, colon, place = where.partition(": ")  # an argument, then maybe a place in it
        name, dot, rest = field.partition(".")
        if name in FLAGS:
            where = FLAGS[name] + (f" {rest}" if dot else "") + (f": {place}" if colon else "")
    message = exc.message
    for text, advice in FLAG_ADVICE.items():
        message = message.replace(text, advice)
    return UserError(message, where=where)
