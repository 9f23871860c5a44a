"""The robustness view's pages: the long rows of robustness_view.py pivoted to one line per run
and model (clean, adversarial, mean corruption and worst corruption, certified accuracy, each
with its 95% interval) as Markdown and self-contained HTML, and a picture of adversarial robust
accuracy against the corruption and certified figures (do adversarially trained models also
resist corruptions here?)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..render.format import markdown_table, model_name  # noqa: E402
from .html import STYLE, esc  # noqa: E402
from .plot import legend_columns, marker_style  # noqa: E402

ROW = ["suite", "seed", "target", "defense"]
#: a certified figure's setting (robustness_view.py writes it; the picture reads radius 0 off it)
RADIUS_SETTING = "L2 r={radius:g} (sigma {sigma:g})"
INTRO = [
    "One line per model and run: its clean accuracy; its adversarial robust accuracy (the "
    "worst case over the suite's attacks, per threat model at the suite's largest budget); "
    "mCA, the mean accuracy over the common corruptions and severities named (Hendrycks & "
    "Dietterich 2019; MNIST-C for grey digits), and the corruption with the lowest mean over "
    "severities; the certified accuracy of the Gaussian-smoothed model at each L2 radius "
    "(randomized smoothing's CERTIFY, Cohen et al. 2019: an image counts only if certified "
    "correct at that radius).",
    "Each figure is followed by its 95% interval over the test images (Wilson's; for mCA and "
    "the worst corruption a conservative one). Figures of different suites compare only "
    "where their settings (columns) match.",
]


def heading(measure: str, setting: str) -> str:
    if measure == "clean":
        return "clean"
    if measure == "adversarial":
        return f"robust {setting}"
    if measure == "corruption_mean":
        return f"mCA ({setting})"
    if measure == "corruption_worst":
        return "worst corruption"
    return f"certified {setting}"


def figure_text(row: pd.Series) -> str:
    value = f"{row['value']:.3f} ({row['ci_low']:.3f}–{row['ci_high']:.3f})"
    return f"{row['setting']}: {value}" if row["measure"] == "corruption_worst" else value


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per run and model, a column per measure and setting (in the view's order)."""
    columns = list(dict.fromkeys(heading(m, s) for m, s in zip(frame["measure"], frame["setting"])))
    lines: dict[tuple, dict[str, str]] = {}
    for _, row in frame.iterrows():
        key = tuple(row[c] for c in ROW)
        line = lines.setdefault(key, {"model": model_name(row["target"], row["defense"]),
                                      "suite": row["suite"], "seed": str(row["seed"])})  # fmt: skip
        line[heading(row["measure"], row["setting"])] = figure_text(row)
    table = pd.DataFrame(list(lines.values()), columns=["model", "suite", "seed", *columns])
    return table.fillna("")


def points(frame: pd.DataFrame, measure: str) -> tuple[str, pd.DataFrame]:
    """The setting of ``measure`` the most runs and models have (the first in the view's
    order among equals; a certified radius above 0 before radius 0, which certifies nothing
    beyond the smoothed prediction) and its rows, one per run and model."""
    rows = frame[frame["measure"] == measure]
    if rows.empty:
        return "", rows
    counts = rows["setting"].value_counts(sort=False)  # in the order of first appearance
    at_zero = RADIUS_SETTING.split("{")[0] + "0 "
    above_zero = [s for s in counts.index if not str(s).startswith(at_zero)]
    counts = counts[above_zero] if above_zero else counts
    setting = counts.idxmax()
    return setting, rows[rows["setting"] == setting].set_index(ROW)


def view_png(frame: pd.DataFrame, title: str) -> bytes | None:
    """Adversarial robust accuracy across, mCA up (left) and certified accuracy up (right),
    each point a model with its intervals; None where no model has the adversarial figure
    and another one."""
    x_setting, xs = points(frame, "adversarial")
    panels = [(m, *points(frame, m)) for m in ("corruption_mean", "certified_acc")]
    panels = [(m, s, ys) for m, s, ys in panels if len(ys.index.intersection(xs.index))]
    if xs.empty or not panels:
        return None
    names = list(dict.fromkeys(xs.index))
    several = len({(suite, seed) for suite, seed, _, _ in names}) > 1
    labels = {
        key: model_name(key[2], key[3]) + (f" ({key[0]}, seed {key[1]})" if several else "")
        for key in names
    }
    width = 4.6 * len(panels)
    columns = legend_columns(list(labels.values()), width)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width, 4.2 + 0.18 * math.ceil(len(names) / columns)),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    handles = {}
    for ax, (measure, setting, ys) in zip(axes.flat, panels):
        for index, key in enumerate(names):
            if key not in ys.index:
                continue
            x, y = xs.loc[key], ys.loc[key]
            colour, marker = marker_style(index)
            drawn = ax.errorbar(
                x["value"], y["value"],
                xerr=[[x["value"] - x["ci_low"]], [x["ci_high"] - x["value"]]],
                yerr=[[y["value"] - y["ci_low"]], [y["ci_high"] - y["value"]]],
                fmt=marker, color=colour, ms=6, capsize=2, lw=1,
            )  # fmt: skip
            handles.setdefault(labels[key], drawn)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_xlabel(f"adversarial robust accuracy ({x_setting})")
        what = "mean corruption accuracy" if measure == "corruption_mean" else "certified accuracy"
        ax.set_ylabel(what)
        ax.set_title(setting, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center", ncol=columns,
        fontsize=8, frameon=False,
    )  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return buffer.getvalue()


def render_view(path: Path, title: str, frame: pd.DataFrame) -> dict[Path, bytes]:
    """The Markdown and HTML pages and the picture of the view at ``path``, by path."""
    table = wide(frame)
    picture = view_png(frame, title)
    image = path.with_suffix(".png")
    markdown = [f"# {title}", "", *[p for text in INTRO for p in (text, "")]]
    if picture is not None:
        markdown += [f"![adversarial against corruption and certified]({image.name})", ""]
    markdown += [markdown_table(table), "", f"Data: [{path.name}]({path.name}).", ""]
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in line) + "</tr>"
        for line in table.itertuples(index=False)
    )
    img = ""
    if picture is not None:
        data = base64.b64encode(picture).decode("ascii")
        img = (
            '<p><img alt="adversarial robust accuracy against corruption and certified '
            f'accuracy" src="data:image/png;base64,{data}"></p>'
        )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{esc(title)}</h1>\n" + "".join(f"<p>{esc(t)}</p>" for t in INTRO) + f"\n{img}\n"
        f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f'</div>\n<p>Data: <a href="{esc(path.name)}">{esc(path.name)}</a>.</p>\n</body></html>\n'
    )
    out = {
        path.with_suffix(".md"): "\n".join(markdown).encode(),
        path.with_suffix(".html"): page.encode(),
    }
    if picture is not None:
        out[image] = picture
    return out
