"""The transfer grid (``[transfer_grid]``): transfer attacks crafted on single surrogates and
on ensembles of them, each judged on every target, with intervals, and the ensemble effect.

TransferAttack (Trustworthy-AI-Group, the field's transfer benchmark) tabulates success rates
of transfer attacks from one surrogate; Liu, Chen, Liu and Song ("Delving into Transferable
Adversarial Examples and Black-box Attacks", ICLR 2017) showed an ensemble of surrogates
transfers better than any member, and Dong et al. (CVPR 2018) fused the ensemble's logits.
One cell per (attack, surrogate) crafts at every budget of the grid and records, per judged
model, which images it classifies right clean and after the transfer; the success rate of a
(surrogate, target) pair is the share of the target's clean-correct images it then gets
wrong. The tables (evaluations/transfer_tables.py) give the grid with Wilson intervals, the
per-image outcomes, TransferAttack's table (rows attacks, columns targets, mean over
surrogates) and the ensemble effect on held-out targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract.cells import Cell, CellOutput
from ..contract.context import Context, build
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import Record
from ..contract.results import Results
from ..contract.schema import GRID_IMAGES
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..models.ensemble import SURROGATE_FUSIONS, Ensemble
from ..registry import ATTACKS
from ..render.format import safe_name
from ..render.transfer_plots import ensemble_effect_plot, grid_heatmap
from ..utils import predict
from .common import bits
from .transfer_settings import GridSettings, read_grid, source_label
from .transfer_tables import (
    effect_by_size,
    effect_table,
    grid_tables,
    transfer_grid_text,
)


@dataclass(frozen=True)
class GridSpec(Record):
    """One crafting: the attack, its budgets, the surrogate's members (one: a single model),
    how an ensemble fuses them, the models it is judged on (in the grid's order), the test
    images and the seed."""

    attack: Mapping[str, Any]
    eps: tuple[float, ...]
    members: tuple[Mapping[str, Any], ...]
    fuse: str
    judged: tuple[Mapping[str, Any], ...]
    n_eval: int | None
    seed: int


@dataclass(frozen=True)
class Judged(Record):
    """One judged model: its clean-correct images and, per budget, the images it still
    classifies right after the transfer (``'0101...'`` strings over the test images)."""

    clean: str
    adv: tuple[str, ...]


@dataclass(frozen=True)
class GridOutcome(Record):
    n_eval: int
    eps: tuple[float, ...]
    judged: tuple[Judged, ...]
    seconds: float
    forward_passes: float
    backward_passes: float
    device: str


def judged_labels(settings: GridSettings) -> tuple[str, ...]:
    """Every model a grid cell is judged on: the targets, then the ensemble effect's pool."""
    pool = settings.effect.pool if settings.effect else ()
    return tuple(dict.fromkeys((*settings.targets, *pool)))


def crafted_sources(settings: GridSettings) -> dict[str, list[tuple[str, ...]]]:
    """Per attack label, the surrogates it crafts on: the grid's sources (or the attack's
    own), and for the ensemble effect's attack the effect's sets too."""
    out = {a.label: settings.sources_of(a) for a in settings.attacks}
    if settings.effect is not None:
        extra = out[settings.effect.attack]
        extra += [s for s in settings.effect.ensembles() if s not in extra]
    return out


@EVALUATIONS.register
class TransferGrid(Evaluation):
    """Surrogate x target success rates of transfer attacks; transfer_grid.csv,
    transfer_grid_images.csv, transfer_by_attack.csv, ensemble_effect.csv, heatmaps."""

    kind = "transfer_grid"
    key_columns = ("attack", "source")
    needs = (MODELS,)
    makes = ("transfer_grid", "transfer_grid_images", "transfer_by_attack", "ensemble_effect")
    suite_sections = ("transfer_grid",)

    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        return read_grid(raw, suite)

    def plan(self, suite: Suite, plan: Plan) -> None:
        settings: GridSettings | None = suite.section("transfer_grid")
        if settings is None:
            return
        judged = [plan.models[label] for label in judged_labels(settings)]
        for attack in settings.attacks:
            for members in crafted_sources(settings)[attack.label]:
                # a set only the ensemble effect needs is crafted at its budget alone
                effect_only = settings.effect is not None and members not in settings.sources_of(
                    attack
                )
                budgets = (settings.effect.eps,) if effect_only else settings.eps
                refs = [plan.models[label] for label in members]
                spec = GridSpec(
                    attack=attack.spec,
                    eps=budgets,
                    members=tuple(ref.to_json() for ref in refs),
                    fuse=settings.fuse if len(members) > 1 else "",  # a single model: none
                    judged=tuple(ref.to_json() for ref in judged),
                    n_eval=settings.n if settings.n is not None else suite.n_eval,
                    seed=suite.seed,
                )
                deps = tuple(dict.fromkeys(c for ref in (*refs, *judged) for c in ref.cells))
                source = source_label(members)
                label = f"transfer grid {attack.label} from {source}"
                plan.add(self.kind, (attack.label, source), label, spec, deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: GridSpec = cell.spec  # type: ignore[assignment]
        members = [ctx.model(ref, spec.seed) for ref in spec.members]
        surrogate = (
            members[0]
            if len(members) == 1
            else Ensemble(members, mode=SURROGATE_FUSIONS[spec.fuse or "logits"])
        )
        attack = build(
            ATTACKS, dict(spec.attack), {"seed": spec.seed, "batch_size": ctx.eval_batch_size}
        )
        x, y = ctx.eval_set(spec.n_eval)
        result = attack(surrogate, x, y, list(spec.eps))
        judged = []
        for ref in spec.judged:
            model = ctx.model(ref, spec.seed)
            clean = ctx.clean_predictions(ref, model, x) == y  # shared by the grid's cells
            adv = tuple(bits(predict(model, result.adv[i]) == y) for i in range(len(spec.eps)))
            judged.append(Judged(bits(clean), adv))
        outcome = GridOutcome(
            n_eval=len(x),
            eps=tuple(spec.eps),
            judged=tuple(judged),
            seconds=float(sum(result.seconds)),
            forward_passes=float(sum(result.forward_passes)),
            backward_passes=float(sum(result.backward_passes)),
            device=ctx.device_name,
        )
        return CellOutput(outcome.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        settings: GridSettings | None = suite.section("transfer_grid")
        if settings is None:
            return
        outcomes = {
            key: (GridOutcome.from_json(f.result), f.cell_id)
            for key, f in results.of(self.kind).items()
        }
        grid, images, by_attack = grid_tables(settings, judged_labels(settings), outcomes)
        tables.set("transfer_grid", grid, csv="transfer_grid.csv")
        tables.set("transfer_grid_images", images, csv=GRID_IMAGES)
        tables.set("transfer_by_attack", by_attack, csv="transfer_by_attack.csv")
        effect = effect_table(settings, judged_labels(settings), outcomes)
        tables.set("ensemble_effect", effect, csv="ensemble_effect.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        settings: GridSettings | None = suite.section("transfer_grid")
        if settings is None or "transfer_grid" not in tables:
            return {}
        made = {}
        grid = tables["transfer_grid"]
        for attack in settings.attacks:
            if len(grid[grid["attack"] == attack.label]):
                name = f"transfer_grid_{safe_name(attack.label)}"
                made[name] = grid_heatmap(grid, attack.label, folder / f"{name}.png")
        effect = tables["ensemble_effect"]
        if len(effect):
            path = folder / "ensemble_effect.png"
            made["ensemble_effect"] = ensemble_effect_plot(effect, effect_by_size(effect), path)
        return made

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        if suite.section("transfer_grid") is None or "transfer_grid" not in tables:
            return []
        return [Section("Transfer grid", transfer_grid_text(tables, plots))]
