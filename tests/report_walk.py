"""A reader of report.md that checks what it shows against the files it comes from: every image
link resolves, and every number in every table equals its CSV (to the digits printed).

Tables are read by their columns, not their headings: a column ``eps E`` (or ``ATTACK eps E``)
is a leaderboard robust accuracy; a column named after an attack of attack_contributions.csv is
a count of broken images; the attack-cost table is a mean over the leaderboard's models; any
other table is a slice of the one CSV that has all its columns (``model`` standing for
``target [defense]``).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pandas as pd

LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
EPS_COLUMN = re.compile(r"^(?:(?P<attack>.+) )?eps (?P<eps>[0-9./]+)$")
NUMBER = re.compile(r"^-?\d+(?:\.(\d+))?(?:e[-+]?\d+)?$")


@dataclass
class Table:
    heading: str
    norm: str | None  # the "linf:" line above it, if any
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def broken_links(report: Path) -> list[str]:
    """Image links of ``report`` that do not resolve to a file, relative to the report."""
    text = report.read_text(encoding="utf-8")
    return [link for link in LINK.findall(text) if not (report.parent / link).is_file()]


def tables(report: Path) -> list[Table]:
    """Every markdown table of ``report`` with the heading and norm line above it."""
    found: list[Table] = []
    heading, norm, current = "", None, None
    for line in report.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading, norm = line.lstrip("# ").strip(), None
        elif re.fullmatch(r"(linf|l2|domain):", line.strip()):
            norm = line.strip()[:-1]
        if not line.startswith("|"):
            current = None
            continue
        cells = [html.unescape(c.strip()) for c in line.strip()[1:-1].split("|")]
        if current is None:
            current = Table(heading, norm, cells)
            found.append(current)
        elif not all(set(c) <= set("-:") for c in cells):
            current.rows.append(cells)
    return found


def eps_value(text: str) -> float:
    if "/" in text:
        return float(Fraction(text))
    return float(text)


def close(shown: str, value: object) -> bool:
    """Whether the printed ``shown`` is ``value`` rounded to the digits printed."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return shown == ""
    if re.fullmatch(r"\d+/255", shown):  # a budget in grey levels (render.format.eps_text)
        return abs(eps_value(shown) - float(value)) <= 1e-9  # type: ignore[arg-type]
    match = NUMBER.match(shown)
    if match is None or isinstance(value, str) and NUMBER.match(value) is None:
        return shown == str(value)
    decimals = len(match.group(1) or "")
    if "e" in shown.lower():
        return math.isclose(float(shown), float(value), rel_tol=1e-3)
    return abs(float(shown) - float(value)) <= 0.5 * 10.0**-decimals + 1e-9


def model_label(target: str, defense: str) -> str:
    return target if defense in ("none", "") else f"{target} [{defense}]"


def problems(folder: Path) -> list[str]:
    """Every image link that does not resolve and every table cell that differs from its
    CSV in the report of the run folder ``folder``."""
    report = folder / "report.md"
    out = [f"{report}: broken image link {link}" for link in broken_links(report)]
    csvs = {}
    for path in sorted(folder.glob("*.csv")):
        try:
            csvs[path.name] = pd.read_csv(path)
        except pd.errors.EmptyDataError:  # an empty table: the report shows nothing of it
            continue
    board = csvs.get("leaderboard.csv")
    if board is not None:
        board = board.assign(model=[model_label(t, d) for t, d in zip(board.target, board.defense)])
        board["defense"] = board["defense"].fillna("none")
    for table in tables(report):
        where = f"{report} [{table.heading}] {table.columns[:4]}"
        try:
            wrong = check_table(table, csvs, board)
        except LookupError as exc:
            wrong = [str(exc)]
        out += [f"{where}: {w}" for w in wrong]
    return out


def check_table(
    table: Table, csvs: dict[str, pd.DataFrame], board: pd.DataFrame | None
) -> list[str]:
    columns = table.columns
    if any(EPS_COLUMN.match(c) for c in columns) and board is not None:
        return check_eps_pivot(table, board)
    contributions = csvs.get("attack_contributions.csv")
    if (
        contributions is not None
        and columns[:3] == ["target", "defense", "eps"]
        and (set(columns[3:-1]) <= set(contributions["attack"]))
    ):
        return check_contributions(table, contributions)
    if table.heading == "Attack cost" and board is not None:
        return check_cost(table, board)
    for name, frame in csvs.items():
        frame = (
            frame.assign(model=[model_label(t, d) for t, d in zip(frame.target, frame.defense)])
            if {"target", "defense"} <= set(frame.columns) and "model" not in frame.columns
            else frame
        )
        if set(columns) <= set(frame.columns):
            return check_slice(table, frame, name)
    raise LookupError(f"no CSV of the run has all the columns {columns}")


def check_eps_pivot(table: Table, board: pd.DataFrame) -> list[str]:
    """``model | clean | eps E ...`` (or ``ATTACK eps E``): robust accuracies of the
    leaderboard; the attack is the heading's (``Attack `NAME` (norm)``) or the worst case."""
    named = re.match(r"Attack `(.+)` \((\w+)\)", table.heading)
    attack = named.group(1) if named else "worst_case"
    rows = (
        board
        if table.norm is None and not named
        else board[board.norm == (named.group(2) if named else table.norm)]
    )
    wrong = []
    for cells in table.rows:
        of_model = rows[rows.model == re.sub(r" \([a-z_ ]+\)$", "", cells[0])]  # (flagged)
        if of_model.empty:
            wrong.append(f"model {cells[0]!r} not in the leaderboard")
            continue
        for column, shown in zip(table.columns[1:], cells[1:]):
            if column == "clean":  # the attack's own: a randomized model's differs by row
                own = of_model[of_model.attack == attack] if named else of_model
                value = (own if len(own) else of_model)["clean_acc"].iloc[0]
            else:
                match = EPS_COLUMN.match(column)
                if match is None:
                    continue
                name = match.group("attack") or attack
                chosen = of_model[of_model.attack == name]
                if name == "worst_case" and chosen.empty:  # one attack: its own rows
                    chosen = of_model
                eps = eps_value(match.group("eps"))
                chosen = chosen[(chosen.eps - eps).abs() < 1e-6]
                if chosen.empty:
                    if shown not in ("", "-"):
                        wrong.append(f"{cells[0]} {column}: {shown} but no such row")
                    continue
                value = chosen["robust_acc"].min()
            if not close(shown, value):
                wrong.append(f"{cells[0]} {column}: shows {shown}, the CSV has {value}")
    return wrong


def check_contributions(table: Table, frame: pd.DataFrame) -> list[str]:
    wrong = []
    for cells in table.rows:
        target, defense, eps = cells[0], cells[1], eps_value(cells[2])
        rows = frame[(frame.target == target) & (frame.defense == defense)]
        rows = rows[
            ((rows.eps - eps).abs() < 5e-4) & ((table.norm is None) | (rows.norm == table.norm))
        ]
        for column, shown in zip(table.columns[3:-1], cells[3:-1]):
            value = rows[rows.attack == column]["broke"]
            if len(value) != 1 or not close(shown, value.iloc[0]):
                where = f"{target} [{defense}] eps {cells[2]} {column}"
                wrong.append(f"{where}: shows {shown}, CSV {value.tolist()}")
        last = rows.sort_values("order")["robust_acc_after"]
        if last.empty or not close(cells[-1], last.iloc[-1]):
            where = f"{target} [{defense}] eps {cells[2]} robust_acc"
            wrong.append(f"{where}: shows {cells[-1]}, CSV {last.tolist()[-1:]}")
    return wrong


def check_cost(table: Table, board: pd.DataFrame) -> list[str]:
    """``attack | eps | ms_per_image | forward_passes | ...``: means over the models."""
    wrong = []
    board = board.assign(ms_per_image=1000 * board.seconds / board.n_eval.clip(lower=1))
    for cells in table.rows:
        rows = board[(board.attack == cells[0]) & ((board.eps - eps_value(cells[1])).abs() < 5e-4)]
        for column, shown in zip(table.columns[2:], cells[2:]):
            if column not in rows.columns:
                continue
            value = rows[column].mean()
            if not close(shown, value):
                wrong.append(f"{cells[0]} eps {cells[1]} {column}: shows {shown}, CSV mean {value}")
    return wrong


def check_slice(table: Table, frame: pd.DataFrame, name: str) -> list[str]:
    """Each row equals some row of ``frame`` on every column shown."""
    wrong = []
    for cells in table.rows:
        if not any(
            all(close(shown, row[column]) for column, shown in zip(table.columns, cells))
            for _, row in frame[table.columns].iterrows()
        ):
            wrong.append(f"row {cells} is in no row of {name}")
    return wrong
