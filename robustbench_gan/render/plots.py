"""Plots of the report (matplotlib, Agg backend, PNG files).

Every plot function takes its data and the path to write, and is ``@cached``: within
``plot_cache(folder)`` (the runner sets it to a folder of its store), a plot whose data,
arguments, code and matplotlib version were drawn before is copied from there, not drawn
again, so a warm run renders nothing it rendered before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import shutil
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..contract.schema import DOMAIN_NORM, WORST_CASE  # noqa: E402
from .format import eps_text, model_name  # noqa: E402

F = TypeVar("F", bound=Callable[..., Path])
_CACHE: ContextVar[tuple[Path, bool] | None] = ContextVar("rbg_plot_cache", default=None)


@contextlib.contextmanager
def plot_cache(folder: Path, *, add: bool = True) -> Iterator[None]:
    """Within the block, ``@cached`` plots are looked up in (and, with ``add``, added to)
    ``folder``; ``rbg report`` only looks (it writes nothing in the store)."""
    token = _CACHE.set((Path(folder), add))
    try:
        yield
    finally:
        _CACHE.reset(token)


def fingerprint(value: Any) -> bytes:
    """Bytes that change when a plot's input changes (frames by content, with columns)."""
    if isinstance(value, pd.DataFrame):
        try:
            rows = pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes()
        except TypeError:  # unhashable cells (lists in private columns)
            rows = value.to_csv(index=False).encode()
        return repr((list(value.columns), list(map(str, value.dtypes)))).encode() + rows
    return repr(value).encode()


@functools.cache
def code_version() -> str:
    """This module's source, the budgets' format and matplotlib's version: a change redraws
    every plot."""
    source = inspect.getsource(sys.modules[__name__]) + inspect.getsource(eps_text)
    return hashlib.sha256(f"{matplotlib.__version__}\n{source}".encode()).hexdigest()


def cached(plot: F) -> F:
    """Reuse an earlier drawing of the same plot (see the module docstring)."""

    @functools.wraps(plot)
    def wrapper(*args: Any) -> Path:
        *data, path = args
        cache = _CACHE.get()
        if cache is None:
            return plot(*args)
        folder, add = cache
        digest = hashlib.sha256(f"{plot.__name__}:{code_version()}".encode())
        for value in data:
            digest.update(fingerprint(value))
        hit = folder / f"{digest.hexdigest()}.png"
        if hit.is_file():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(hit, path)
            return Path(path)
        made = plot(*args)
        if not add:
            return made
        folder.mkdir(parents=True, exist_ok=True)
        tmp = hit.with_suffix(".tmp")
        shutil.copyfile(made, tmp)
        tmp.replace(hit)
        return made

    return wrapper  # type: ignore[return-value]


def save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def accuracy_panels(n: int, cols: int, size: tuple[float, float]) -> tuple[plt.Figure, np.ndarray]:
    """A grid of ``n`` accuracy panels sharing the y axis (0 to 1), spare ones hidden."""
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(size[0] * cols, size[1] * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("robust accuracy")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def add_model_legend(fig: plt.Figure, axes: np.ndarray) -> None:
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)))


@cached
def robust_accuracy_plot(board: pd.DataFrame, path: Path) -> Path:
    """Robust accuracy against eps: one panel per (attack, norm), one line per model."""
    board = board[board["norm"] != DOMAIN_NORM]
    panels = list(dict.fromkeys(zip(board["attack"], board["norm"])))
    panels = [p for p in panels if p[0] != WORST_CASE] + [p for p in panels if p[0] == WORST_CASE]
    fig, axes = accuracy_panels(len(panels), 3, (4.2, 3.4))
    spans = board.groupby("norm")["eps"].agg(["min", "max"])
    for ax, (attack, norm) in zip(axes.flat, panels):
        part = board[(board["attack"] == attack) & (board["norm"] == norm)]
        low, high = spans.loc[norm, "min"], spans.loc[norm, "max"]
        if high > low:  # one eps axis per norm, so an attack run at one budget sits in place
            pad = 0.04 * (high - low)
            ax.set_xlim(low - pad, high + pad)
        for (target, defense), group in part.groupby(["target", "defense"], sort=False):
            group = group.sort_values("eps")
            ax.plot(
                group["eps"], group["robust_acc"], marker="o", label=model_name(target, defense)
            )
        ax.set_title(attack if attack != WORST_CASE else f"{attack} ({norm})")
        ax.set_xlabel(f"eps ({norm}, [0, 1] pixel scale)")
        budget_ticks(ax, sorted(board.loc[board["norm"] == norm, "eps"].unique()))
    add_model_legend(fig, axes)
    return save(fig, path)


def budget_ticks(ax: plt.Axes, budgets: list[float]) -> None:
    """Ticks at a few budgets, labelled as the report's tables write them (8/255, 0.1); left
    to matplotlib when there are too many to read, or when budgets crowd each other."""
    span = (budgets[-1] - budgets[0]) if budgets else 0.0
    gaps = np.diff(budgets) if len(budgets) > 1 else np.array([span])
    if not budgets or len(budgets) > 7 or (span > 0 and gaps.min() < span / 12):
        return
    ax.set_xticks(budgets, [eps_text(e) for e in budgets], fontsize=8)


@cached
def transfer_heatmap(transfer: pd.DataFrame, attack: str, path: Path) -> Path:
    """Target accuracy on examples crafted on the source, one panel per eps > 0."""
    part = transfer[(transfer["attack"] == attack) & (transfer["eps"] > 0)]
    budgets = sorted(part["eps"].unique())
    models = list(dict.fromkeys(part["source"]))
    cols = min(2, len(budgets))
    rows = math.ceil(len(budgets) / cols)
    size = 0.5 * len(models) + 1.5
    fig, axes = plt.subplots(
        rows, cols, figsize=(size * cols + 3, size * rows + 2), squeeze=False, layout="constrained"
    )
    image = None
    for index, (ax, eps) in enumerate(zip(axes.flat, budgets)):
        grid = (
            part[part["eps"] == eps]
            .pivot(index="source", columns="target", values="target_robust_acc")
            .reindex(index=models, columns=models)
        )
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        first_col = index % cols == 0
        ax.set_xticks(range(len(models)), models, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(models)), models if first_col else [], fontsize=8)
        ax.set_xlabel("target")
        if first_col:
            ax.set_ylabel("source")
        ax.set_title(f"{attack}, eps {eps_text(eps)}")
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            color = "white" if value < 0.5 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    for ax in list(axes.flat)[len(budgets) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="target accuracy")
    return save(fig, path)


@cached
def iteration_plot(curves: pd.DataFrame, attack: str, path: Path) -> Path:
    """Robust accuracy against the number of iterations: one panel per eps > 0, a line per model."""
    curves = curves[curves["eps"] > 0]
    budgets = sorted(curves["eps"].unique())
    fig, axes = accuracy_panels(len(budgets), 4, (3.8, 3.2))
    for ax, eps in zip(axes.flat, budgets):
        part = curves[curves["eps"] == eps]
        for (target, defense), group in part.groupby(["target", "defense"], sort=False):
            ax.plot(group["iteration"], group["robust_acc"], label=model_name(target, defense))
        ax.set_title(f"{attack}, eps {eps_text(eps)}")
        ax.set_xlabel("iterations")
    add_model_legend(fig, axes)
    return save(fig, path)


@cached
def gan_curves_plot(curves: pd.DataFrame, path: Path) -> Path:
    """Training diagnostics, one column per generator: D and G losses (moving average over
    2% of the steps); below, every other measured series (FID and coverage while training,
    CycleGAN's cycle error) against the step."""
    gens = list(dict.fromkeys(curves["generator"]))
    extra = [c for c in curves.columns if c not in ("generator", "step", "d_loss", "g_loss")]
    extra = [c for c in extra if curves[c].notna().any()]
    rows = 1 + len(extra)
    fig, axes = plt.subplots(
        rows, len(gens), figsize=(4.2 * len(gens), 3.0 * rows), squeeze=False, layout="constrained"
    )
    for col, gen in enumerate(gens):
        part = curves[curves["generator"] == gen]
        ax = axes[0, col]
        window = max(1, len(part) // 50)
        for name, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
            smooth = np.convolve(part[name], np.ones(window) / window, mode="valid")
            ax.plot(part["step"].to_numpy()[window - 1 :], smooth, label=label)
        ax.set_title(gen)
        ax.legend(fontsize=8)
        for row, name in enumerate(extra, start=1):
            ax = axes[row, col]
            points = part[["step", name]].dropna()
            if not len(points):  # a series of another family (CycleGAN's cycle error)
                ax.axis("off")
                continue
            ax.plot(points["step"], points[name], marker="o" if len(points) < 50 else None)
            if name.startswith("fid"):
                ax.set_yscale("log")  # early FIDs are orders of magnitude above the last
            ax.set_ylabel(name)
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
        axes[-1, col].set_xlabel("step")
    return save(fig, path)
