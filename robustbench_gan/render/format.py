"""Formatting shared by the report's sections: numbers, Markdown tables, model names."""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Iterable

import pandas as pd

#: how close ``eps * 255`` must come to a whole number for eps to read as grey levels
LEVELS_TOLERANCE = 1e-6


def eps_text(eps: object) -> str:
    """A budget as every report table, heading and plot label writes it: ``k/255`` when eps
    is a whole number k of grey levels (``eps * 255`` within 1e-6 of an integer) and not a
    short decimal (one with at most 4 decimals, such as 0.2 or 0.6, stays one), otherwise the
    shortest decimal that reads back as the same float (0.1, 0.3, 0.0078); empty for a
    missing eps. CSVs keep the raw floats."""
    try:
        value = float(eps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if math.isnan(value):
        return ""
    if value == 0:
        return "0"
    short = f"{value:.4f}".rstrip("0").rstrip(".")
    if float(short) == value:
        return short
    levels = round(value * 255) if math.isfinite(value * 255) else 0
    if levels != 0 and abs(value * 255 - levels) <= LEVELS_TOLERANCE:
        return f"{levels}/255"
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value:
            return text
    return repr(value)


def fmt(value: object) -> str:
    """A table cell: numbers to 3 decimals, text escaped (no HTML, no stray column bars)."""
    if value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return escape(str(value)).replace("|", "\\|")


def escape(text: str) -> str:
    """User text for Markdown: ``<``, ``>`` and ``&`` as entities, so a suite's notes or
    labels cannot carry HTML (a script, an image with an onerror) into a report."""
    return html.escape(text, quote=False)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table; an ``eps`` column's budgets written by :func:`eps_text`."""
    header = "| " + " | ".join(fmt(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    budgets = [str(c) == "eps" for c in frame.columns]
    body = [
        "| "
        + " | ".join(eps_text(v) if is_eps else fmt(v) for v, is_eps in zip(row, budgets))
        + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def model_name(target: str, defense: str) -> str:
    return target if defense == "none" else f"{target} [{defense}]"


def with_model_column(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without cell ids, its target and defense columns merged into one ``model``."""
    shown = frame.drop(columns=["cell_id"]).copy()
    shown.insert(0, "model", [model_name(t, d) for t, d in zip(shown["target"], shown["defense"])])
    return shown.drop(columns=["target", "defense"])


def lines_of(title: str, body: Iterable[str]) -> list[str]:
    """A section: its title (escaped: titles hold labels) and its lines."""
    return [f"## {escape(title)}", "", *body, ""]


def robust_accuracy_matrix(board: pd.DataFrame, attack: str, norm: str) -> pd.DataFrame:
    """Models as rows, eps as columns, robust accuracy in the cells; flagged rows marked."""
    part = board[(board["attack"] == attack) & (board["norm"] == norm)].copy()
    part["model"] = [model_name(t, d) for t, d in zip(part["target"], part["defense"])]
    flagged = set(part.loc[part["indicators"] != "", "model"])
    matrix = part.pivot_table(index="model", columns="eps", values="robust_acc", sort=False)
    clean = part.groupby("model", sort=False)["clean_acc"].first()
    matrix.insert(0, "clean", clean)
    matrix.columns = ["clean"] + [f"eps {eps_text(c)}" for c in matrix.columns[1:]]
    matrix.index = [f"{m} (flagged)" if m in flagged else m for m in matrix.index]
    return matrix.reset_index(names="model")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV, safe to open in a spreadsheet: a text cell that would start a
    formula is prefixed with an apostrophe (OWASP's advice on CSV injection); numbers and
    every other text are written as they are."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = [neutralised(v) for v in safe[column]]
    return safe.to_csv(index=False)


def neutralised(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


SAFE_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def safe_name(label: str) -> str:
    """A label as part of a file name: itself when made of letters, digits and ``_.+-`` (and
    not starting with a dot); otherwise those characters kept, the rest as ``_``, and a
    short hash of the label so two labels never share a file."""
    if SAFE_NAME.fullmatch(label) and not label.startswith("."):
        return label
    kept = re.sub(r"[^A-Za-z0-9_.+-]", "_", label).lstrip(".")[:48]
    return f"{kept}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
