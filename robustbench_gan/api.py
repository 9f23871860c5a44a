"""The Python API: ``benchmark(model, ...)``, one model on a dataset's official test points.

In the spirit of RobustBench's ``benchmark``: the model is used as it is (nothing is
trained), on the first ``n_examples`` images of the dataset's official test split in file
order, under AutoAttack's standard version or the attacks named. The run goes
through the same plan, cache, tables and report as a suite, so ``out`` gets the same files;
its run.json also holds how the run was made (``eval``: the suite and the model as it was
identified), so ``rbg report`` renders the folder again without the model's files.

Errors name the argument given (``eps``, ``attacks``, ``dataset_params.path``; ``rbg eval``
turns these into its options), never the suite built from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from .contract.norms import Norm
from .contract.suite import Suite, TargetSpec
from .errors import UserError
from .eval_folder import SUITE_FILE, eval_record, manifest_entries
from .evaluations.load_classifier import IN_MEMORY
from .contract.schema import WORST_CASE
from .suite import parse_suite
from .suite.fields import freeze, parse_eps
from .suite.targets import default_label, loaded_target
from .utils import modes_kept

STANDARD = "standard"  # AutoAttack's standard version: APGD-CE, APGD-T, FAB-T, Square
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
}  # fmt: skip
FLAG_ADVICE = {"add download=True to dataset_params": "add --dataset-param download=true"}


@dataclass
class BenchmarkResult:
    """What ``benchmark`` measured. ``attacks`` holds the leaderboard rows of the model (one
    per attack and budget, then the worst case), ``broken_by`` per image the first attack
    (in the order given) that fooled it at the largest budget ('' when none did, 'clean'
    when the clean image was already misclassified)."""

    clean_acc: float
    robust_acc: float
    attacks: pd.DataFrame
    flags: list[str]
    broken_by: list[str]
    model_card: dict[str, Any]
    out: Path | None


def benchmark(
    model: nn.Module | str,
    *,
    dataset: str,
    threat_model: str = "Linf",
    eps: float | str,
    n_examples: int = 1000,
    attacks: str | Sequence[str] = STANDARD,
    batch_size: int = 256,
    device: str = "auto",
    seed: int = 0,
    data_dir: str | Path | None = None,
    dataset_params: dict[str, Any] | None = None,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    weights: str | Path | None = None,
    params: dict[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    progress: bool = False,
) -> BenchmarkResult:
    """Attack ``model`` (an ``nn.Module``, or a reference such as ``"torchvision:resnet18"``,
    ``"my_module:Net"``, ``"model.pt2"`` or ``"robustbench:NAME"`` with ``weights`` and
    constructor ``params``) on the first ``n_examples`` test images of ``dataset`` at budget
    ``eps`` (a number or a string such as ``"8/255"``). The model receives images in [0, 1];
    ``mean``/``std`` put a normalization layer in front. ``attacks`` is ``"standard"``
    (AutoAttack's standard version: APGD-CE, APGD-T, FAB-T and, in Linf, Square, with its
    settings) or a list of registered attack names. ``dataset_params`` are the dataset's
    options, as keys of a suite's ``[dataset]`` table (``{"path": "cifar10-jpeg"}`` for
    ``imagefolder``).
    Results are cached in ``cache_dir`` like a suite's; with ``out`` the run also writes
    its CSVs, report.md, model_cards.json and model_card.json there. The model is handed
    back as it came: every submodule in its own train or eval mode, on its own device."""
    from .runner.run import run_suite

    suite, raw = built_suite(
        model,
        dataset=dataset,
        threat_model=threat_model,
        eps=eps,
        n_examples=n_examples,
        attacks=attacks,
        batch_size=batch_size,
        seed=seed,
        weights=weights,
        params=params or {},
        mean=mean,
        std=std,
        dataset_params=dataset_params,
    )
    with as_it_came(model), tempfile.TemporaryDirectory(prefix="rbg-benchmark-") as tmp:
        target = Path(out) if out is not None else Path(tmp) / "out"
        try:
            summary = run_suite(
                suite,
                out=target,
                device=device,
                data_dir=data_dir,
                cache_dir=cache_dir,
                progress=progress,
                # for `rbg report`: how this suite, built in memory, was made
                recorded=manifest_entries(eval_record(suite, raw, target))
                if out is not None
                else None,
            )
        except UserError as exc:
            raise located(exc, suite.path) from None
        result = summarize(summary, None if out is None else target)
    if result.out is not None:
        card = json.dumps(result.model_card, indent=2, allow_nan=False)
        (result.out / "model_card.json").write_text(card + "\n", encoding="utf-8")
    return result


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
) -> Suite:
    """The one-model suite ``benchmark`` and ``rbg eval`` run (paths relative to ``folder``,
    the working directory by default)."""
    return built_suite(**locals())[0]


def built_suite(
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
) -> tuple[Suite, dict[str, Any]]:
    """``benchmark_suite``'s suite and the suite table it was read from; a UserError names
    the argument at fault."""
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
    raw = {
        "name": "benchmark",
        "description": "One model on the first n test images of the official split.",
        "seed": seed,
        "dataset": {**dataset_options(dataset_params), "name": dataset, "test_only": True},
        "eval": {"eps": [budget], "n": n_examples, "batch_size": batch_size},
        "targets": [{"name": "mlp"}],  # replaced below: the model is loaded, not trained
        "attacks": attack_entries(attacks, norm, budget),
    }
    try:
        suite = parse_suite(raw, folder / SUITE_FILE)
        target = model_target(model, weights, params or {}, mean, std, folder, dataset)
    except UserError as exc:
        raise located(exc, folder / SUITE_FILE) from None
    suite = dataclasses.replace(suite, name=f"benchmark-{target.label}", targets=(target,))
    return suite, raw


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


@contextmanager
def as_it_came(model: nn.Module | str) -> Iterator[None]:
    """Run the body, then give an ``nn.Module`` back in the modes and on the device it came
    with (loading puts it in eval mode and on the run's device)."""
    if not isinstance(model, nn.Module):
        yield
        return
    device = next((t.device for t in (*model.parameters(), *model.buffers())), None)
    try:
        with modes_kept(model):
            yield
    finally:
        if device is not None:
            model.to(device)


def attack_entries(attacks: str | Sequence[str], norm: str, eps: float) -> list[dict[str, Any]]:
    if isinstance(attacks, str):
        if attacks != STANDARD:
            raise UserError(f"must be {STANDARD!r} or a list of attack names", where="attacks")
        preset = {"name": "autoattack", "version": STANDARD, "label": STANDARD, "norm": norm}
        return [{**preset, "eps": [eps]}]
    if not attacks or not all(isinstance(a, str) for a in attacks):
        raise UserError("must be 'standard' or a non-empty list of attack names", where="attacks")
    from .registry import ATTACKS
    from .utils import takes_keyword

    entries = []
    for name in attacks:
        entry: dict[str, Any] = {"name": name, "eps": [eps]}
        try:
            factory = ATTACKS.get(name)
        except UserError as exc:
            raise exc.at("attacks") from None
        if takes_keyword(factory, "norm"):  # an attack of both norms runs the one asked
            entry["norm"] = norm
        entries.append(entry)
    return entries


def model_target(
    model: nn.Module | str,
    weights: str | Path | None,
    params: dict[str, Any],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    folder: Path,
    dataset: str,
) -> TargetSpec:
    """The benchmarked model as a loaded target; an ``nn.Module`` is kept in this process
    and identified by the sha256 of its class and weights."""
    entry: dict[str, Any] = {}
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
    name = f"object:{module_sha256(model)}"
    IN_MEMORY[name] = model
    target = loaded_target(entry, "model", name, type(model).__name__, freeze({}), folder, dataset)
    return dataclasses.replace(target, fingerprint=freeze({"object_sha256": name[7:]}))


def module_sha256(model: nn.Module) -> str:
    """sha256 of a module's class and every tensor of its state dict."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def summarize(summary: Any, out: Path | None) -> BenchmarkResult:
    """The benchmark's result from the run's tables."""
    board = summary.tables["leaderboard"]
    rows = board[board["eps"] == board["eps"].max()]
    worst = rows[rows["attack"] == WORST_CASE]
    robust = float((worst if len(worst) else rows)["robust_acc"].min())
    cards = summary.tables.documents["model_cards.json"]
    flags = sorted({f for text in board["flags"] for f in str(text).split(";") if f})
    shown = board.drop(columns=[c for c in board.columns if c.startswith("_")])
    return BenchmarkResult(
        clean_acc=float(board["clean_acc"].iloc[0]),
        robust_acc=robust,
        attacks=shown.reset_index(drop=True),
        flags=flags,
        broken_by=broken_by(rows),
        model_card=cards[0],
        out=out,
    )


def broken_by(rows: pd.DataFrame) -> list[str]:
    """Per image, the first attack (in suite order) whose example fooled the model; within
    a composite (``standard``), the part of it that did."""
    single = rows[rows["attack"] != WORST_CASE]
    clean = single["_clean"].iloc[0]
    out = ["clean" if bit == "0" else "" for bit in clean]
    for attack, correct, parts in zip(single["attack"], single["_correct"], single["_fooled_by"]):
        for i, bit in enumerate(correct):
            if bit == "0" and out[i] == "":
                out[i] = parts[i] if isinstance(parts, list) and parts[i] else attack
    return out


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
