"""report.md: the tables a reader looks at first, the plots, and the definitions."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from ..audit import FLAG_MEANINGS
from ..suite import FindingSpec, Suite
from .plots import model_name
from .tables import WORST_CASE, Tables


def fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def robust_accuracy_matrix(board: pd.DataFrame, attack: str, norm: str) -> pd.DataFrame:
    """Models as rows, eps as columns, robust accuracy in the cells; flagged rows marked."""
    part = board[(board["attack"] == attack) & (board["norm"] == norm)].copy()
    part["model"] = [model_name(t, d) for t, d in zip(part["target"], part["defense"])]
    flagged = set(part.loc[part["flags"] != "", "model"])
    matrix = part.pivot_table(index="model", columns="eps", values="robust_acc", sort=False)
    clean = part.groupby("model", sort=False)["clean_acc"].first()
    matrix.insert(0, "clean", clean)
    matrix.columns = ["clean"] + [f"eps {c:g}" for c in matrix.columns[1:]]
    matrix.index = [f"{m} (flagged)" if m in flagged else m for m in matrix.index]
    return matrix.reset_index(names="model")


def render_report(
    suite: Suite,
    tables: Tables,
    plots: dict[str, str],
    *,
    device: str,
    versions: str,
) -> str:
    board = tables.leaderboard
    lines = [
        f"# {suite.name}: robustness report",
        "",
        suite.description,
        "",
        f"Dataset `{suite.dataset.name}`, {int(board['n_eval'].iloc[0])} test images attacked, "
        f"seed {suite.seed}, device {device}, {versions}.",
        "Budgets are on the [0, 1] pixel scale, Linf unless an attack's norm says L2. Robust "
        "accuracy is the share of test images still classified correctly after the attack "
        "(misclassified clean images count as not robust).",
        "",
    ]
    if len(tables.references) or suite.notes or suite.findings:
        lines += section("Beside the papers", references_text(suite, tables))
    lines += section("Worst case over all attacks", worst_case_text(board))
    attacks = dict.fromkeys(zip(board["attack"], board["norm"]))
    for attack, norm in attacks:
        if attack != WORST_CASE:
            table = markdown_table(robust_accuracy_matrix(board, attack, norm))
            lines += section(f"Attack `{attack}` ({norm})", [table])
    lines += section("Robustness curves", curves_text(plots))
    flagged = board[board["flags"] != ""]
    if len(flagged):
        lines += section("Audit flags", flags_text(flagged))
    lines += section("Transfer", transfer_text(tables.transfer, plots))
    if len(tables.ensemble):
        lines += section("Ensembles", ensemble_text(tables.ensemble))
    if len(tables.gan):
        lines += section("Generators", gan_text(tables.gan, plots))
    return "\n".join(lines).rstrip() + "\n"


def section(title: str, body: Iterable[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def references_text(suite: Suite, tables: Tables) -> list[str]:
    references = tables.references
    lines = [line for finding in suite.findings for line in finding_text(finding, tables.transfer)]
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
    return lines + ([suite.notes.strip()] if suite.notes else [])


def finding_text(finding: FindingSpec, transfer: pd.DataFrame) -> list[str]:
    """Does the paper's claim hold here? Mean target accuracy over the transfer sources."""
    part = transfer[
        (transfer["attack"] == finding.attack)
        & (transfer["eps"] == finding.eps)
        & transfer["source"].isin(finding.sources)
    ]
    means = part.groupby("target")["target_robust_acc"].mean()
    better, worse = means[finding.better], means[finding.worse]
    verdict = "holds here" if better > worse else "**does not hold here**"
    return [
        f"Finding: {finding.claim} Under {finding.attack} at eps {finding.eps:g} from "
        f"{', '.join(finding.sources)}, {finding.better} keeps {better:.3f} accuracy on average "
        f"and {finding.worse} {worse:.3f}: the finding {verdict}.",
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
            f"Transfer asymmetry ({attack}, eps {eps:g}): the paper's error is "
            f"{'higher' if paper > 0 else 'lower'} from {source} to {target} than back "
            f"({forward.paper_value:.3f} against {backward.paper_value:.3f}); ours is "
            f"{forward.ours:.3f} against {backward.ours:.3f}, "
            + ("the same direction." if same else "**the opposite direction**: the paper's "
               "asymmetry does not hold here."),
            "",
        ]  # fmt: skip
    return lines


def worst_case_text(board: pd.DataFrame) -> list[str]:
    worst = board[board["attack"] == WORST_CASE]
    if not len(worst):
        return ["Only one attack per norm was run; see the tables below."]
    lines = [
        "Per image, an image counts as robust at an eps only if it survives every attack of "
        "that norm run at that eps.",
        "",
    ]
    for norm in dict.fromkeys(worst["norm"]):
        lines += [
            f"{norm}:",
            "",
            markdown_table(robust_accuracy_matrix(board, WORST_CASE, norm)),
            "",
        ]
    return lines


def curves_text(plots: dict[str, str]) -> list[str]:
    lines = [
        "Robust accuracy against eps (`curves_eps.csv`) and, for iterative attacks, against the "
        "number of iterations (`curves_iterations.csv`: an image counts as robust after k "
        "iterations if the attack had not fooled it within them). A curve still falling at the "
        "last iteration means the attack needs more iterations.",
        "",
        f"![robust accuracy against eps]({plots['robust_accuracy']})",
    ]
    return lines + [
        f"![{name}]({path})" for name, path in plots.items() if name.startswith("iterations_")
    ]


def flags_text(flagged: pd.DataFrame) -> list[str]:
    cols = ["target", "defense", "attack", "eps", "robust_acc", "flags"]
    raised = sorted({f for flags in flagged["flags"] for f in flags.split(";")})
    legend = [f"- `{flag}`: {FLAG_MEANINGS[flag]}" for flag in raised]
    return [
        "These rows failed a sanity check and are marked (flagged) in the tables above; do not "
        "rank them until the cause is understood.",
        "",
        *legend,
        "",
        markdown_table(flagged[cols]),
    ]


def transfer_text(transfer: pd.DataFrame, plots: dict[str, str]) -> list[str]:
    lines = [
        "Adversarial examples crafted on the source model are fed to the target model. "
        "`target_robust_acc` is the target's accuracy on them; `transfer_success_rate` is the "
        "share of the images the target classifies correctly when clean that it misclassifies "
        "after the transfer (its denominator is those clean-correct images). The diagonal is the "
        "white-box attack.",
        "",
    ]
    lines += [
        f"![transfer {name}]({path})"
        for name, path in plots.items()
        if name.startswith("transfer_")
    ]
    return lines


def ensemble_text(frame: pd.DataFrame) -> list[str]:
    cols = ["ensemble", "attack", "eps", "ensemble_robust_acc", "best_member",
            "best_member_robust_acc", "mean_member_robust_acc", "gain"]  # fmt: skip
    shown = frame[frame["eps"] > 0][cols]
    return [
        "White-box attacks on the ensemble go through its averaged output. `gain` is the "
        "ensemble's robust accuracy minus its best member's; the columns "
        "`transfer_robust_acc_from:*` of ensemble.csv give its accuracy on examples crafted on "
        'each other model. An ensemble with `mode = "vote"` is evaluated by the majority vote '
        "of its members and attacked through their probability average (a vote has no "
        "gradient).",
        "",
        markdown_table(shown),
    ]


def gan_text(frame: pd.DataFrame, plots: dict[str, str]) -> list[str]:
    lines = [
        "FID is computed on the penultimate features of the suite's own classifier named in the "
        "column (not Inception features, so values are not comparable with published FIDs). "
        "Precision/recall follow Kynkäänniemi et al. 2019 (k-NN manifolds, k = 5), coverage "
        "Naeem et al. 2020. Class coverage is the share of classes that receive at least half "
        "the uniform share of the judge's predictions; label fidelity is the share of "
        "conditional samples that the judge classifies as the class they were generated for.",
        "",
        markdown_table(frame),
        "",
    ]
    lines += [f"![{name}]({path})" for name, path in plots.items() if name.startswith("gan_")]
    return lines
