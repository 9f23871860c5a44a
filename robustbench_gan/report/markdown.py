"""report.md: the tables a reader looks at first, the plots, and the definitions."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from ..audit import FLAG_MEANINGS
from ..suite import FindingSpec, Suite
from .plots import model_name
from .tables import DOMAIN_NORM, WORST_CASE, Tables


def fmt(value: object) -> str:
    if value is pd.NA:
        return ""
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
        if attack != WORST_CASE and norm != DOMAIN_NORM:
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
    if len(tables.domain_shift):
        lines += section("Domain shift", domain_text(tables.domain_shift))
    purifiers = [d for d in suite.defenses if d.name == "defense_gan"]
    if purifiers:
        lines += section("GAN purification (Defense-GAN)", purification_text(purifiers, board))
    if len(tables.latent):
        lines += section("Latent-space attack", latent_text(tables.latent, plots))
    if len(tables.attack_cost):
        lines += section("Attack cost", attack_cost_text(tables.attack_cost))
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
        "column (not Inception features, so values are not comparable with published FIDs; "
        "`fid_inception` appears only when the suite points to local Inception-v3 weights). "
        "`is_<judge>` is the Inception Score computed with that classifier: "
        "exp(E KL(p(y|x) || p(y))), between 1 and the number of classes. "
        "Precision/recall follow Kynkäänniemi et al. 2019 (k-NN manifolds, k = 5), density and "
        "coverage Naeem et al. 2020. Class coverage is the share of classes that receive at "
        "least half the uniform share of the judge's predictions and `class_kl` the KL "
        "divergence of the predicted class frequencies from uniform (mode collapse shows in "
        "both); label fidelity is the share of conditional samples that the judge classifies "
        "as the class they were generated for (for a translating generator: the share whose "
        "class survives the round trip to the other domain). Memorisation: "
        "`nn_train_dist_fake` and `nn_train_dist_test` are median pixel L2 distances to the "
        "nearest training image from the generated and from real test images; a "
        "`memorization_ratio` (their quotient) well below 1 means samples copy training images.",
        "",
        "The `baseline` row is not a GAN: class-mean images plus Gaussian noise. "
        "`beats_baseline` says whether a generator has a lower FID and a higher coverage than "
        "it; one that does not has learned less than the class means.",
        "",
        markdown_table(frame),
        "",
    ]
    lines += [f"![{name}]({path})" for name, path in plots.items() if name.startswith("gan_")]
    return lines


def domain_text(frame: pd.DataFrame) -> list[str]:
    shown = frame.drop(columns=["cell_id"]).copy()
    shown.insert(0, "model", [model_name(t, d) for t, d in zip(shown["target"], shown["defense"])])
    shown = shown.drop(columns=["target", "defense"])
    return [
        "Accuracy of each model on its test set translated to another domain by a translating "
        "generator (CycleGAN family, G_AB). `transformed_acc` is the accuracy on the true "
        "transform of the same images (for transform domains such as `invert`), the shift the "
        "generator learned to imitate. These rows appear in leaderboard.csv with norm "
        f"`{DOMAIN_NORM}` and no eps; they are not part of the worst case.",
        "",
        markdown_table(shown),
    ]


def purification_text(purifiers: list, board: pd.DataFrame) -> list[str]:
    """Defense-GAN's rows side by side: the gradient the attacks saw decides the number."""
    labels = {d.label: d.params.get("gradient", "bpda") for d in purifiers}
    part = board[board["defense"].isin(labels) & (board["eps"] > 0)].copy()
    part["model"] = [
        f"{model_name(t, d)} ({labels[d]})" for t, d in zip(part["target"], part["defense"])
    ]
    part["column"] = [f"{a} eps {e:g}" for a, e in zip(part["attack"], part["eps"])]
    matrix = part.pivot_table(index="model", columns="column", values="robust_acc", sort=False)
    return [
        "Defense-GAN classifies the generator's closest image G(z*) instead of the input. How "
        "the attacks see that projection decides the number: `naive` attacks the bare "
        "classifier and only evaluates the purified one (the examples transfer), so its "
        "robust accuracy measures how well the projection removes perturbations made for "
        "another model, not robustness, and its rows carry the `naive_evaluation` flag; "
        "`bpda` treats the projection as the identity on the backward pass and averages "
        "gradients over random restarts (BPDA + EOT, Athalye et al. 2018), the adaptive "
        "evaluation to trust; `unrolled` differentiates through every descent step. The "
        "known result is that BPDA brings the naive number down.",
        "",
        markdown_table(matrix.reset_index()),
    ]


def latent_text(frame: pd.DataFrame, plots: dict[str, str]) -> list[str]:
    shown = frame.drop(columns=["cell_id"]).copy()
    shown.insert(0, "model", [model_name(t, d) for t, d in zip(shown["target"], shown["defense"])])
    shown = shown.drop(columns=["target", "defense"])
    lines = [
        "Unrestricted adversarial examples (Song et al. 2018): for each source class the "
        "search moves a latent code z of the conditional generator (within a soft box around "
        "a random start) until the target misclassifies G(z, y) while the auxiliary "
        "classifier still sees class y. No eps ball bounds the change, so these numbers are "
        "not comparable with the leaderboard's. `target_acc_start` is the target's accuracy "
        "on the generator's unsearched samples, `success_rate` the share of samples where "
        "the target is fooled and the auxiliary agrees. Each picture shows the starting "
        "samples (top rows) and what the search found (bottom rows).",
        "",
        markdown_table(shown),
        "",
    ]
    lines += [f"![{name}]({path})" for name, path in plots.items() if name.startswith("latent_")]
    return lines


def attack_cost_text(frame: pd.DataFrame) -> list[str]:
    text = (
        "Attack time per image in milliseconds (mean over the models; this machine's wall "
        "clock, so compare rows, not runs)."
    )
    if frame["train_seconds"].any():
        text += (
            " `train_seconds` is what an attack that learns first (AdvGAN) spent training per "
            "model, before attacking; it is not in the time per image."
        )
    else:  # no attack here learns first
        frame = frame.drop(columns=["train_seconds"])
    return [text, "", markdown_table(frame)]
