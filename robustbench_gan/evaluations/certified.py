"""Certified L2 robustness by randomized smoothing (``[certify]``): Cohen et al.'s CERTIFY on
the first test images of each chosen model, and the certified accuracy by radius.

Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing", ICML
2019 (https://arxiv.org/abs/1902.02918). The model is the base classifier ``f`` of the
smoothed ``g(x) = argmax_c P(f(x + d) = c)``, ``d ~ N(0, sigma^2 I)``; CERTIFY chooses a class
from ``n0`` noisy copies, bounds its probability from below with ``n`` fresh ones (one-sided
Clopper-Pearson at level ``1 - alpha``) and certifies the L2 radius
``sigma * Phi^-1(pA_lower)``, or abstains (certify/smoothing.py). A model trained for it is one
with the ``gaussian_augment`` defense at the same sigma; any model can be smoothed.

One cell per chosen model records per image the certified class (-1: abstained), the radius,
``pA_lower``, whether the plug-in smoothed classifier (the most frequent class of the ``n``
copies) and the base classifier are right. certified.csv: per (model, radius) the certified
accuracy (the share of images certified with the right class at a radius of at least it) with
its Wilson 95% interval, beside the clean accuracy of the smoothed classifier, which bounds it
(a certified class holds more than half of the copies), and CERTIFY's parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from ..certify import ABSTAIN, certified_accuracy, certify
from ..contract.cells import Cell, CellOutput
from ..contract.context import Context
from ..contract.kind import MODELS, Evaluation, Section
from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.records import ModelCellSpec, Record
from ..contract.results import Results
from ..contract.suite import Suite
from ..contract.tables import Tables
from ..render.format import markdown_table
from ..render.robustness_plots import certified_plot
from .common import bits, pack, share, unbits, unpack
from .robustness_settings import CertifySettings, read_certify

#: ``n_eval`` counts the test images certified; ``n`` is CERTIFY's noisy copies per image
CERTIFIED_COLUMNS = [
    "model", "radius", "n_eval", "certified_acc", "ci_low", "ci_high", "smoothed_clean_acc",
    "base_clean_acc", "abstained", "sigma", "n0", "n", "alpha", "cell_id",
]  # fmt: skip
#: points of the certified-accuracy curve drawn between radius 0 and the largest one
CURVE_POINTS = 200


@dataclass(frozen=True, kw_only=True)
class CertifySpec(ModelCellSpec):
    """The model and seed, the first ``n_eval`` test images and CERTIFY's parameters
    (``batch``: noisy copies per forward pass, which orders the noise's draws)."""

    n_eval: int | None
    sigma: float
    n0: int
    n: int
    alpha: float
    batch: int


@dataclass(frozen=True)
class CertifyOutcome(Record):
    """Per image, packed (common.pack): the true ``label``, the certified class ``certified``
    (-1: abstained), the ``radius`` and ``p_lower``; as ``'0101...'``: the images the
    smoothed classifier (the most frequent class of the ``n`` copies) and the base
    classifier get right."""

    n_eval: int
    label: str
    certified: str
    radius: str
    p_lower: str
    smoothed: str
    base: str
    seconds: float
    device: str


@EVALUATIONS.register
class Certified(Evaluation):
    """Randomized smoothing's certified accuracy by L2 radius; certified.csv and a plot."""

    kind = "certified"  # "certify" is certify/'s function: the core may not name it
    key_columns = ("model",)
    needs = (MODELS,)
    makes = ("certified",)
    suite_sections = ("certify",)

    def read_section(self, key: str, raw: Mapping[str, Any], suite: Suite) -> Any:
        return read_certify(raw, suite)

    def plan(self, suite: Suite, plan: Plan) -> None:
        settings: CertifySettings | None = suite.section("certify")
        if settings is None:
            return
        n_eval = settings.images if settings.images is not None else suite.n_eval
        for label in settings.models:
            model = plan.models[label]
            spec = CertifySpec.of(
                model,
                suite,
                n_eval=n_eval,
                sigma=settings.sigma,
                n0=settings.n0,
                n=settings.n,
                alpha=settings.alpha,
                batch=settings.batch,
            )
            plan.add(self.kind, label, f"certify {label}", spec, model.cells)

    def run(self, cell: Cell, ctx: Context) -> CellOutput:
        spec: CertifySpec = cell.spec  # type: ignore[assignment]
        start = time.perf_counter()
        model = ctx.model(spec.model, spec.seed)
        x, y = ctx.eval_set(spec.n_eval)
        base = ctx.clean_predictions(spec.model, model, x) == y
        cert = certify(
            model,
            x,
            sigma=spec.sigma,
            n0=spec.n0,
            n=spec.n,
            alpha=spec.alpha,
            batch_size=spec.batch,
            seed=spec.seed,
        )
        smoothed = cert.counts.argmax(dim=1) == y  # plug-in g(x): the most frequent class
        outcome = CertifyOutcome(
            n_eval=len(x),
            label=pack(y, "<i2"),
            certified=pack(cert.label, "<i2"),
            radius=pack(cert.radius, "<f8"),
            p_lower=pack(cert.p_lower, "<f8"),
            smoothed=bits(smoothed),
            base=bits(base),
            seconds=time.perf_counter() - start,
            device=ctx.device_name,
        )
        return CellOutput(outcome.to_json())

    def tables(self, suite: Suite, results: Results, tables: Tables) -> None:
        settings: CertifySettings | None = suite.section("certify")
        if settings is None:
            return
        rows = []
        for label, finished in results.of(self.kind).items():
            outcome = CertifyOutcome.from_json(finished.result)
            spec = finished.spec
            certified = torch.from_numpy(unpack(outcome.certified).astype(np.int64))
            truth = torch.from_numpy(unpack(outcome.label).astype(np.int64))
            radius = torch.from_numpy(unpack(outcome.radius).copy())
            smoothed = unbits(outcome.smoothed)
            base = unbits(outcome.base)
            abstained = share(certified == ABSTAIN)
            for at in certified_accuracy(certified, radius, truth, settings.radii):
                rows.append(
                    {
                        "model": label,
                        "radius": at.radius,
                        "n_eval": at.total,
                        "certified_acc": at.accuracy,
                        "ci_low": at.low,
                        "ci_high": at.high,
                        "smoothed_clean_acc": float(smoothed.mean()) if len(smoothed) else math.nan,
                        "base_clean_acc": float(base.mean()) if len(base) else math.nan,
                        "abstained": abstained,
                        "sigma": spec["sigma"],
                        "n0": spec["n0"],
                        "n": spec["n"],
                        "alpha": spec["alpha"],
                        "cell_id": finished.cell_id,
                    }
                )
        tables.set("certified", pd.DataFrame(rows, columns=CERTIFIED_COLUMNS), csv="certified.csv")

    def plots(self, suite: Suite, results: Results, tables: Tables, folder: Path) -> dict:
        if suite.section("certify") is None or "certified" not in tables:
            return {}
        frame = tables["certified"]
        if not len(frame):
            return {}
        curve = certified_curve(results.of(self.kind), float(frame["radius"].max()))
        return {"certified": certified_plot(frame, curve, folder / "certified.png")}

    def sections(self, suite: Suite, tables: Tables, plots: Mapping[str, str]) -> list[Section]:
        settings: CertifySettings | None = suite.section("certify")
        if settings is None or "certified" not in tables or not len(tables["certified"]):
            return []
        return [Section("Certified robustness", certified_text(settings, tables, plots))]


def certified_curve(cells: Mapping[Any, Any], largest: float) -> pd.DataFrame:
    """Per model, certified accuracy at ``CURVE_POINTS`` radii from 0 to past the largest
    radius tabulated or certified: Cohen et al.'s curve, from the per-image radii."""
    found = {}
    for label, finished in cells.items():
        outcome = CertifyOutcome.from_json(finished.result)
        right = unpack(outcome.certified) == unpack(outcome.label)
        found[label] = np.where(right, unpack(outcome.radius), -np.inf)
    top = max([largest, *(float(r.max(initial=0.0)) for r in found.values())])
    grid = np.linspace(0.0, 1.05 * top if top > 0 else 1.0, CURVE_POINTS)
    rows = [
        {"model": label, "radius": r, "certified_acc": float((radius >= r).mean())}
        for label, radius in found.items()
        if len(radius)
        for r in grid
    ]
    return pd.DataFrame(rows, columns=["model", "radius", "certified_acc"])


def largest_radius(settings: CertifySettings) -> float:
    """The largest radius CERTIFY can give with ``n`` copies: all of them on one class."""
    return settings.sigma * float(norm.ppf(settings.alpha ** (1 / settings.n)))


def certified_text(
    settings: CertifySettings, tables: Tables, plots: Mapping[str, str]
) -> list[str]:
    frame = tables["certified"]
    table = frame.pivot(index="model", columns="radius", values="certified_acc")
    table = table.reindex(index=list(dict.fromkeys(frame["model"])))
    table.columns = [f"r {r:g}" for r in table.columns]
    first = frame.drop_duplicates("model").set_index("model")
    table.insert(0, "smoothed clean", first["smoothed_clean_acc"])
    table.insert(0, "base clean", first["base_clean_acc"])
    table["abstained"] = first["abstained"]
    lines = [
        "Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): each model is the base "
        f"classifier of a smoothed one under Gaussian noise of sigma {settings.sigma:g}. "
        f"CERTIFY chooses a class from n0 = {settings.n0} noisy copies, bounds its "
        f"probability from below with n = {settings.n} more (alpha = {settings.alpha:g}) and "
        "certifies the L2 radius sigma * Phi^-1 of that bound, or abstains. The certified "
        "accuracy at radius r is the share of test images certified with the right class at "
        f"a radius of at least r; with n = {settings.n} no radius above "
        f"{largest_radius(settings):.3f} can be certified. `smoothed clean` is the accuracy "
        "of the smoothed classifier (the most frequent class of the copies), which bounds "
        "every certified accuracy; `base clean` that of the model itself. certified.csv "
        "gives each figure with its Wilson 95% interval.",
        "",
        markdown_table(table.reset_index(names="model")),
        "",
    ]
    if "certified" in plots:
        lines.append(f"![certified accuracy]({plots['certified']})")
    return lines
