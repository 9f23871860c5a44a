"""The latent-space attack (``[latent]``): unrestricted examples from a conditional GAN."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..attacks.latent import latent_attack
from ..bounds import check_ranges
from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.fields import freeze, table, typed, unknown_keys
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import ModelCellSpec, Record
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..errors import UserError
from ..gans.grid import save_image_grid
from ..render.format import markdown_table, with_model_column
from .common import artifact_pngs

LATENT_KEYS = {"generator", "auxiliary", "n", "steps", "lr", "eps_z", "lambda_z", "lambda_aux"}
LATENT_COLUMNS = [
    "target", "defense", "generator", "auxiliary", "n", "target_acc_start", "target_acc_found",
    "auxiliary_agrees", "success_rate", "seconds", "cell_id",
]  # fmt: skip


@dataclass(frozen=True)
class LatentSettings(Record):
    """``[latent]``: a conditional ``generator`` of the suite, an ``auxiliary`` target that
    must keep recognising the source class, and the search ``params``."""

    generator: str
    auxiliary: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class LatentSpec(ModelCellSpec):
    """No ``n_eval``: the search runs on the generator's samples, not on test images."""

    latent: LatentSettings


@dataclass(frozen=True)
class LatentOutcome(Record):
    """Shares over the searched samples (attacks.latent.LatentResult.summary) and setting."""

    n: int
    target_acc_start: float
    target_acc_found: float
    auxiliary_agrees: float
    success_rate: float
    seconds: float
    generator: str
    auxiliary: str
    device: str


@EVALUATIONS.register
class Latent(Evaluation):
    """Song et al. 2018's search in the latent space of a conditional generator, on every
    model but the auxiliary; latent.csv, a picture per model and its report section."""

    kind = "latent"
    key_columns = ("model",)
    needs = (MODELS, "train_gan")
    makes = ("latent",)
    report_artifacts = ("grid",)
    suite_sections = ("latent",)

    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        """``[latent]``: the generator and auxiliary classifier by label, the search settings."""
        if key not in raw:
            return None
        entry = table(raw, key)
        unknown_keys(entry, LATENT_KEYS, key)
        generator = typed(entry.get("generator"), str, "latent.generator", required=True)
        if generator not in [g.label for g in suite.generators]:
            raise UserError(f"{generator!r} is not a generator label", where="latent.generator")
        auxiliary = typed(entry.get("auxiliary"), str, "latent.auxiliary", required=True)
        if auxiliary not in [t.label for t in suite.targets]:
            raise UserError(f"{auxiliary!r} is not a target label", where="latent.auxiliary")
        params = {k: v for k, v in entry.items() if k not in ("generator", "auxiliary")}
        check_ranges(latent_attack, params, "latent")  # the search's own declared bounds
        return LatentSettings(generator, auxiliary, freeze(params))

    def plan(self, suite: Suite, plan: Plan) -> None:
        settings: LatentSettings | None = suite.section("latent")
        if settings is None:
            return
        aux = plan.models[settings.auxiliary]
        gan_cell = plan.cells_of("train_gan")[settings.generator]
        for model in plan.models.values():
            if model.label == settings.auxiliary:  # it judges the others
                continue
            spec = LatentSpec.of(model, suite, latent=settings)
            deps = (gan_cell, *aux.cells, *model.cells)
            plan.add(self.kind, model.label, f"latent attack on {model.label}", spec, deps)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: LatentSpec = cell.spec  # type: ignore[assignment]
        gan = ctx.load(cell.deps[0])
        auxiliary = ctx.load(cell.deps[1])
        model = ctx.model(spec.model, spec.seed)
        params = {
            k: (int(v) if k in ("n", "steps") else float(v)) for k, v in spec.latent.params.items()
        }
        try:
            outcome = latent_attack(gan, model, auxiliary, seed=spec.seed, **params)
        except ValueError as exc:
            raise UserError(f"latent attack: {exc}", where="latent") from None
        shown = min(len(outcome.labels), 2 * gan.num_classes)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "latent.png"
            images = torch.cat([outcome.start[:shown], outcome.found[:shown]])
            save_image_grid(images, path, nrow=shown)
            grid = path.read_bytes()
        result = LatentOutcome(
            **outcome.summary(),
            generator=spec.latent.generator,
            auxiliary=spec.latent.auxiliary,
            device=ctx.device_name,
        )
        return CellOutput(result.to_json(), {"grid": grid})

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        rows = []
        for label, finished in results.of(self.kind).items():
            model = results.models[label]
            rows.append(
                {
                    "target": model.base,
                    "defense": model.defense,
                    **LatentOutcome.from_json(finished.result).to_json(),
                    "cell_id": finished.cell_id,
                }
            )
        tables.set("latent", pd.DataFrame(rows, columns=LATENT_COLUMNS), csv="latent.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        return artifact_pngs(results.of(self.kind), "grid", folder, "latent_")

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        frame = tables["latent"]
        if not len(frame):
            return []
        return [Section("Latent-space attack", latent_text(frame, plots))]


def latent_text(frame: pd.DataFrame, plots: Mapping[str, str]) -> list[str]:
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
        markdown_table(with_model_column(frame)),
        "",
    ]
    return lines + [
        f"![{name}]({path})" for name, path in plots.items() if name.startswith("latent_")
    ]
