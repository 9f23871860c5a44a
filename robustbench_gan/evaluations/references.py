"""Reproductions: published figures ([[reference]]) and claims ([[finding]]) beside ours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..contract.fields import entries, typed, unknown_keys
from ..contract.kind import Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.results import Results
from ..contract.suite import AttackSpec, Suite
from ..contract.tables import Tables
from ..errors import UserError
from ..render.format import eps_text, escape, markdown_table
from .attack_tables import white_box_acc
from .transfer import transferred_acc

REFERENCE_METRICS = ("robust_acc", "error", "target_robust_acc", "transfer_error")
REFERENCE_COLUMNS = [
    "paper", "setting", "metric", "model", "attack", "eps", "paper_value", "ours", "difference",
]  # fmt: skip


@dataclass(frozen=True)
class ReferenceSpec:
    """A published figure the report sets beside ours.

    ``metric`` is ``robust_acc`` or ``error`` (1 - robust accuracy) of ``model`` under
    ``attack`` at ``eps``, or ``target_robust_acc`` / ``transfer_error`` of ``model`` on
    examples crafted on ``source``.
    """

    paper: str
    setting: str
    metric: str
    model: str
    attack: str
    eps: float
    value: float
    source: str | None = None


@dataclass(frozen=True)
class FindingSpec:
    """A paper's qualitative claim, checked on this run: under transfer from ``sources``
    (``attack`` at ``eps``), model ``better`` keeps a higher mean accuracy than ``worse``."""

    claim: str
    better: str
    worse: str
    sources: tuple[str, ...]
    attack: str
    eps: float


@EVALUATIONS.register
class References(Evaluation):
    """Reads [[reference]] and [[finding]]; builds references.csv and the report's "Beside
    the papers" section (with the suite's notes). Plans no cells."""

    kind = "references"
    reads = ("leaderboard", "transfer")
    makes = ("references",)
    suite_sections = ("reference", "finding")

    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        models = suite.model_labels
        read = reference_spec if key == "reference" else finding_spec
        return tuple(read(e, i, models, suite.attacks) for i, e in enumerate(entries(raw, key)))

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        board, transfer = tables["leaderboard"], tables["transfer"]
        rows = []
        for ref in references_of(suite):
            if ref.source is None:
                ours = white_box_acc(board, results, ref.model, ref.attack, ref.eps)
            else:
                ours = transferred_acc(transfer, ref.attack, ref.eps, ref.source, ref.model)
            if pd.isna(ours):  # its cell is not finished: a partial run
                continue
            if ref.metric in ("error", "transfer_error"):
                ours = 1 - ours
            rows.append(
                {
                    "paper": ref.paper,
                    "setting": ref.setting,
                    "metric": ref.metric,
                    "model": ref.model if ref.source is None else f"{ref.source} -> {ref.model}",
                    "attack": ref.attack,
                    "eps": ref.eps,
                    "paper_value": ref.value,
                    "ours": ours,
                    "difference": ours - ref.value,
                }
            )
        tables.set(
            "references", pd.DataFrame(rows, columns=REFERENCE_COLUMNS), csv="references.csv"
        )

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        references, findings = tables["references"], findings_of(suite)
        if not (len(references) or suite.notes or findings):
            return []
        lines = [line for f in findings for line in finding_text(f, tables["transfer"])]
        if len(references):
            lines += [
                "Published figures (`paper_value`) beside the same quantity measured by this run "
                "(`ours`); `error` is 1 - robust accuracy, `transfer_error` the target's error on "
                "examples crafted on the source.",
                "",
                markdown_table(references),
                "",
                *asymmetry_text(references),
            ]
        lines += [escape(suite.notes.strip())] if suite.notes else []
        return [Section("Beside the papers", lines, "summary")]


def references_of(suite: Suite) -> tuple[ReferenceSpec, ...]:
    return suite.section("reference") or ()


def findings_of(suite: Suite) -> tuple[FindingSpec, ...]:
    return suite.section("finding") or ()


# -- reading ------------------------------------------------------------------------
def attack_at_budget(
    entry: Mapping[str, Any], where: str, attacks: tuple[AttackSpec, ...]
) -> tuple[str, float]:
    """An entry's ``attack`` (a label of the suite) and an ``eps`` that attack runs at."""
    attack = typed(entry.get("attack"), str, f"{where}.attack", required=True)
    spec = next((a for a in attacks if a.label == attack), None)
    if spec is None:
        raise UserError(f"{attack!r} is not an attack label of the suite", where=f"{where}.attack")
    eps = typed(entry.get("eps"), float, f"{where}.eps", required=True)
    if eps not in spec.eps:
        raise UserError(f"{attack} does not run at eps {eps}", where=f"{where}.eps")
    return attack, eps


def reference_spec(
    entry: Mapping[str, Any], index: int, models: list[str], attacks: tuple[AttackSpec, ...]
) -> ReferenceSpec:
    where = f"reference[{index}]"
    keys = {"paper", "setting", "metric", "model", "attack", "eps", "value", "source"}
    unknown_keys(entry, keys, where)
    metric = typed(entry.get("metric"), str, f"{where}.metric", required=True)
    if metric not in REFERENCE_METRICS:
        raise UserError(f"must be one of {', '.join(REFERENCE_METRICS)}", where=f"{where}.metric")
    transfer = metric in ("target_robust_acc", "transfer_error")
    source = typed(entry.get("source"), str, f"{where}.source", required=transfer)
    for key, label in (("model", entry.get("model")), ("source", source)):
        if label is not None and label not in models:
            raise UserError(f"{label!r} is not a model of the suite", where=f"{where}.{key}")
    attack, eps = attack_at_budget(entry, where, attacks)
    return ReferenceSpec(
        paper=typed(entry.get("paper"), str, f"{where}.paper", required=True),
        setting=typed(entry.get("setting", ""), str, f"{where}.setting"),
        metric=metric,
        model=typed(entry.get("model"), str, f"{where}.model", required=True),
        attack=attack,
        eps=eps,
        value=typed(entry.get("value"), float, f"{where}.value", required=True),
        source=source,
    )


def finding_spec(
    entry: Mapping[str, Any], index: int, models: list[str], attacks: tuple[AttackSpec, ...]
) -> FindingSpec:
    where = f"finding[{index}]"
    unknown_keys(entry, {"claim", "better", "worse", "sources", "attack", "eps"}, where)
    sources = entry.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(m, str) for m in sources):
        raise UserError("must be a non-empty list of model labels", where=f"{where}.sources")
    better = typed(entry.get("better"), str, f"{where}.better", required=True)
    worse = typed(entry.get("worse"), str, f"{where}.worse", required=True)
    for key, label in [("better", better), ("worse", worse), *(("sources", m) for m in sources)]:
        if label not in models:
            raise UserError(f"{label!r} is not a model of the suite", where=f"{where}.{key}")
    overlap = {better, worse} & set(sources)
    if overlap:
        raise UserError(
            f"{', '.join(sorted(overlap))} cannot be its own source", where=f"{where}.sources"
        )
    attack, eps = attack_at_budget(entry, where, attacks)
    claim = typed(entry.get("claim"), str, f"{where}.claim", required=True)
    return FindingSpec(claim, better, worse, tuple(sources), attack, eps)


# -- report text ----------------------------------------------------------------------
def finding_text(finding: FindingSpec, transfer: pd.DataFrame) -> list[str]:
    """Does the paper's claim hold here? Mean target accuracy over the transfer sources."""
    part = transfer[
        (transfer["attack"] == finding.attack)
        & (transfer["eps"] == finding.eps)
        & transfer["source"].isin(finding.sources)
    ]
    means = part.groupby("target")["target_robust_acc"].mean()
    if finding.better not in means or finding.worse not in means:  # a partial run
        return []
    better, worse = means[finding.better], means[finding.worse]
    verdict = "holds here" if better > worse else "**does not hold here**"
    return [
        f"Finding: {escape(finding.claim)} Under {finding.attack} at eps "
        f"{eps_text(finding.eps)} from {', '.join(finding.sources)}, {finding.better} keeps "
        f"{better:.3f} accuracy on average and {finding.worse} {worse:.3f}: the finding "
        f"{verdict}.",
        "",
    ]


def asymmetry_text(references: pd.DataFrame) -> list[str]:
    """For each pair of transfer references in both directions: is ours the paper's direction?"""
    lines = []
    transfer = references[references["metric"] == "transfer_error"]
    pairs = {(r.model, r.attack, r.eps): r for r in transfer.itertuples()}
    for (model, attack, eps), forward in pairs.items():
        source, target = model.split(" -> ")
        backward = pairs.get((f"{target} -> {source}", attack, eps))
        if backward is None or source > target:  # each pair once
            continue
        paper = forward.paper_value - backward.paper_value
        ours = forward.ours - backward.ours
        same = (paper > 0) == (ours > 0)
        lines += [
            f"Transfer asymmetry ({attack}, eps {eps_text(eps)}): the paper's error is "
            f"{'higher' if paper > 0 else 'lower'} from {source} to {target} than back "
            f"({forward.paper_value:.3f} against {backward.paper_value:.3f}); ours is "
            f"{forward.ours:.3f} against {backward.ours:.3f}, "
            + ("the same direction." if same else "**the opposite direction**: the paper's "
               "asymmetry does not hold here."),
            "",
        ]  # fmt: skip
    return lines
