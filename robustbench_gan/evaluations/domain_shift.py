"""Domain shift: each model on its test set translated into each domain of a translating
generator (CycleGAN's one domain, StarGAN's several)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import EvalCellSpec, Record
from ..contract.results import Results
from ..contract.schema import DOMAIN_NORM, LeaderboardRow
from ..contract.suite import GeneratorSpec, Suite
from ..contract.tables import Tables
from ..render.format import markdown_table, with_model_column
from ..utils import predict
from .common import declared_domains, share

DOMAIN_SHIFT_COLUMNS = [
    "target", "defense", "generator", "domain", "n_eval", "clean_acc", "translated_acc",
    "transformed_acc", "cell_id",
]  # fmt: skip


@dataclass(frozen=True)
class DomainSpec(EvalCellSpec):
    """``domain`` is named only for a generator with several domains (one cell each), so the
    cells of a one-domain translator keep the ids they had before there were several."""

    OPTIONAL = ("domain",)

    domain: str | None = None


@dataclass(frozen=True)
class DomainResult(Record):
    domain: str
    n_eval: int
    clean_acc: float
    translated_acc: float
    translated_error_rate: float
    transformed_acc: float | None
    device: str
    versions: str


@EVALUATIONS.register
class DomainShift(Evaluation):
    """For every model, every generator whose family translates domains and each domain it
    translates into: accuracy on the test set moved to that domain (CycleGAN's G_AB(x),
    StarGAN's G(x, c)) and, for transform domains, under the true transform T(x). Rows join
    the leaderboard with norm ``domain`` and no eps."""

    kind = "domain_shift"
    key_columns = ("model", "generator", "domain")
    needs = (MODELS, "train_gan")
    makes = ("domain_shift",)
    extends = ("leaderboard",)  # its rows, norm ``domain``

    def plan(self, suite: Suite, plan: Plan) -> None:
        gans = plan.cells_of("train_gan")
        translating = [(g, planned_domains(g)) for g in suite.generators]
        for model in plan.models.values():
            for gen, domains in translating:
                for domain in domains:
                    named = domain if len(domains) > 1 else None
                    spec = DomainSpec.of(model, suite, domain=named)
                    deps = (gans[gen.label], *model.cells)
                    which = "" if named is None else f" ({domain})"
                    label = f"{gen.label} domain shift{which} on {model.label}"
                    plan.add(self.kind, (model.label, gen.label, domain), label, spec, deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: DomainSpec = cell.spec  # type: ignore[assignment]
        gan = ctx.load(cell.deps[0])
        model = ctx.model(spec.model, spec.seed)
        x, y = ctx.eval_set(spec.n_eval)
        domain = spec.domain if spec.domain is not None else gan.translated_domains[0]
        clean_correct = predict(model, x) == y
        translated_correct = predict(model, gan.translate_to(x, domain)) == y
        true_acc = None
        if gan.is_transform_domain(domain):
            true_acc = share(predict(model, gan.domain_counterparts(x, domain, split="test")) == y)
        result = DomainResult(
            domain=domain,
            n_eval=len(x),
            clean_acc=share(clean_correct),
            translated_acc=share(translated_correct),
            translated_error_rate=share(~translated_correct, of=clean_correct),
            transformed_acc=true_acc,
            device=ctx.device_name,
            versions=ctx.versions,
        )
        return CellOutput(result.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        found = {key: (f.cell_id, DomainResult.from_json(f.result))
                 for key, f in results.of(self.kind).items()}  # fmt: skip
        rows = []
        for (label, gen, _), (cell_id, res) in found.items():
            model = results.models[label]
            rows.append(
                {
                    "target": model.base,
                    "defense": model.defense,
                    "generator": gen,
                    "domain": res.domain,
                    "n_eval": res.n_eval,
                    "clean_acc": res.clean_acc,
                    "translated_acc": res.translated_acc,
                    "transformed_acc": np.nan
                    if res.transformed_acc is None
                    else res.transformed_acc,
                    "cell_id": cell_id,
                }
            )
        tables.set(
            "domain_shift", pd.DataFrame(rows, columns=DOMAIN_SHIFT_COLUMNS), csv="domain_shift.csv"
        )
        if found:
            gens = {g.label: g for g in suite.generators}
            board = pd.concat(
                [
                    tables["leaderboard"],
                    pd.DataFrame(leaderboard_rows(suite, results, found, gens)),
                ],
                ignore_index=True,
            )
            order = {label: i for i, label in enumerate(results.models)}
            position = [order[m] for m in board["_model"]]
            board = board.iloc[np.argsort(position, kind="stable")]
            tables.set("leaderboard", board.reset_index(drop=True))

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        frame = tables["domain_shift"]
        if not len(frame):
            return []
        return [Section("Domain shift", domain_text(frame))]


def planned_domains(gen: GeneratorSpec) -> tuple[str, ...]:
    """The domains a [[generators]] entry translates into (none for a sampler)."""
    return declared_domains(gen.name, gen.params)


def leaderboard_rows(
    suite: Suite, results: Results, found: dict, gens: dict
) -> list[LeaderboardRow]:
    """Leaderboard rows on translated test sets: norm ``domain``, no eps; the attack is the
    generator's label, with ``:<domain>`` for a generator of several domains. ``_model``
    orders them after the attack rows of their model."""
    rows: list[LeaderboardRow] = []
    for (label, gen, domain), (cell_id, res) in found.items():
        model = results.models[label]
        params = gens[gen].to_json()
        several = len(planned_domains(gens[gen])) > 1  # as the plan named the cells
        if several:  # one row per domain: the domain joins the name and the parameters
            params = {**params, "domain": domain}
        rows.append(
            {
                "suite": suite.name,
                "dataset": suite.dataset.name,
                "target": model.base,
                "defense": model.defense,
                "attack": f"{gen}:{domain}" if several else gen,
                "attack_params": json.dumps(params, sort_keys=True),
                "norm": DOMAIN_NORM,
                "eps": np.nan,
                "n_eval": res.n_eval,
                "clean_acc": res.clean_acc,
                "robust_acc": res.translated_acc,
                "attack_success_rate": res.translated_error_rate,
                "mean_linf": np.nan,
                "mean_l2": np.nan,
                "seconds": np.nan,
                "device": res.device,
                "versions": res.versions,
                "seed": suite.seed,
                "indicators": "",
                "cell_id": cell_id,
                "_black_box": False,
                "_model": label,
            }
        )
    return rows


def domain_text(frame: pd.DataFrame) -> list[str]:
    return [
        "Accuracy of each model on its test set translated into another domain by a translating "
        "generator (one row per domain it translates into). `transformed_acc` is the accuracy "
        "on the true transform of the same images (for transform domains such as `invert`), "
        "the shift the generator learned to imitate. These rows appear in leaderboard.csv with "
        "norm "
        f"`{DOMAIN_NORM}` and no eps; they are not part of the worst case.",
        "",
        markdown_table(with_model_column(frame)),
    ]
