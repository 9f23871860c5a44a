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

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from .api_suite import STANDARD, as_options, benchmark_suite, located
from .contract.schema import CARD_SECTION_KEYS, ROBUSTNESS_TABLE_KEYS, WORST_CASE
from .contract.suite import Suite
from .errors import UserError
from .suite.eval_folder import eval_record, manifest_entries
from .suite.table import suite_table
from .utils import modes_kept

__all__ = ["STANDARD", "BenchmarkResult", "as_options", "benchmark", "benchmark_suite"]


@dataclass
class BenchmarkResult:
    """What ``benchmark`` measured. ``attacks`` holds the leaderboard rows of the model (one
    per attack and budget, then the worst case), ``broken_by`` per image the first attack
    (in the order given) that fooled it at the largest budget ('' when none did, 'clean'
    when the clean image was already misclassified). ``corruptions`` and ``certified`` are
    the model card's fields of those names where they were asked for (else None): the mean
    corruption accuracy and the worst corruption, the certified accuracy by L2 radius, each
    with its 95% interval; corruption.csv and certified.csv in ``out`` hold the rest."""

    clean_acc: float
    robust_acc: float
    attacks: pd.DataFrame
    indicators: list[str]
    broken_by: list[str]
    model_card: dict[str, Any]
    out: Path | None
    corruptions: dict[str, Any] | None = None
    certified: dict[str, Any] | None = None


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
    corruptions: bool | Mapping[str, Any] | None = None,
    certify: bool | Mapping[str, Any] | None = None,
) -> BenchmarkResult:
    """Attack ``model`` (an ``nn.Module``, or a reference such as ``"torchvision:resnet18"``,
    ``"my_module:Net"``, ``"model.pt2"`` or ``"robustbench:NAME"`` with ``weights`` and
    constructor ``params``) on the first ``n_examples`` test images of ``dataset`` at budget
    ``eps`` (a number or a string such as ``"8/255"``). The model receives images in [0, 1];
    ``mean``/``std`` put a normalization layer in front. ``attacks`` is ``"standard"``
    (AutoAttack's standard version: APGD-CE, APGD-T, FAB-T and, in Linf, Square, with its
    settings), a preset of a plugin (``"standard_fast"``: AutoAttack's verdict for a fraction
    of its passes; ``"adaptive"``) or a list of registered attack names. ``dataset_params`` are the dataset's
    options, as keys of a suite's ``[dataset]`` table (``{"path": "cifar10-jpeg"}`` for
    ``imagefolder``).
    ``corruptions`` (True, or the keys of a suite's ``[corruptions]`` table: ``severities``,
    ``names``, ``n``) adds accuracy under common corruptions; ``certify`` (True, or the keys
    of ``[certify]``: ``sigma``, ``n0``, ``n``, ``alpha``, ``images``, ``radii``, ``batch``)
    adds randomized smoothing's certified accuracy by L2 radius. Both land in the model card.
    Results are cached in ``cache_dir`` like a suite's; with ``out`` the run also writes
    its CSVs, report.md, model_cards.json and model_card.json there. The model is handed
    back as it came: every submodule in its own train or eval mode, on its own device."""
    from .runner.run import run_suite

    sections = sections_of(corruptions, certify)
    suite = benchmark_suite(
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
        sections=sections,
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
                recorded=manifest_entries(
                    eval_record(suite, recorded_table(suite, sections), target)
                )
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


def sections_of(
    corruptions: bool | Mapping[str, Any] | None, certify: bool | Mapping[str, Any] | None
) -> dict[str, Any]:
    """The suite tables ``corruptions`` and ``certify`` ask for: True is the table with its
    defaults, a mapping the table itself, False or None no table."""
    out: dict[str, Any] = {}
    for key, value in zip(ROBUSTNESS_TABLE_KEYS, (corruptions, certify)):
        if value is None or value is False:
            continue
        if value is True:
            out[key] = {}
        elif isinstance(value, Mapping):
            out[key] = dict(value)
        else:
            raise UserError(f"must be True, False or a table of settings, got {value!r}",
                            where=key)  # fmt: skip
    return out


def recorded_table(suite: Suite, sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The suite table an eval folder records: the suite's, less its name, which the record
    keeps apart (a model's label need not make a suite file's name), with the kinds' tables
    asked for (``sections``) as they were given."""
    table = suite_table(suite)
    del table["name"]
    return table | dict(sections or {})


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


def summarize(summary: Any, out: Path | None) -> BenchmarkResult:
    """The benchmark's result from the run's tables."""
    board = summary.tables["leaderboard"]
    rows = board[board["eps"] == board["eps"].max()]
    worst = rows[rows["attack"] == WORST_CASE]
    robust = float((worst if len(worst) else rows)["robust_acc"].min())
    cards = summary.tables.documents["model_cards.json"]
    indicators = sorted({f for text in board["indicators"] for f in str(text).split(";") if f})
    shown = board.drop(columns=[c for c in board.columns if c.startswith("_")])
    return BenchmarkResult(
        clean_acc=float(board["clean_acc"].iloc[0]),
        robust_acc=robust,
        attacks=shown.reset_index(drop=True),
        indicators=indicators,
        broken_by=broken_by(rows),
        model_card=cards[0],
        out=out,
        corruptions=cards[0].get(CARD_SECTION_KEYS[0]),
        certified=cards[0].get(CARD_SECTION_KEYS[1]),
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
