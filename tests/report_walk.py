"""A reader of report.md that checks what it shows against the files it comes from: every image
link resolves, and every number in every table equals its CSV (to the digits printed).

Tables are read by their columns, not their headings: a column ``eps E`` (or ``ATTACK eps E``)
is a leaderboard robust accuracy; a column named after an attack of attack_contributions.csv is
a count of broken images; the attack-cost table is a mean over the leaderboard's models; the
transfer grid's ``attack | TARGET ...`` table is the mean success over transfer_grid.csv's
surrogates that do not hold the target and the ensemble effect's ``size | pairs ...`` table
ensemble_effect.csv pooled over its pairs (both recomputed here, not read from the report's own
summary CSV); the certified table's ``r R`` columns are certified.csv's accuracy at radius R;
any other table is a slice of the one CSV that has all its columns (``model``
standing for ``target [defense]``).
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
RADIUS_COLUMN = re.compile(r"^r ([0-9.]+)$")
NUMBER = re.compile(r"^-?\d+(?:\.(\d+))?(?:e[-+]?\d+)?$")


@dataclass
class Table:
    heading: str
    norm: str | None  # the "linf:" line above it, if any
    eps: str | None  # the "eps 8/255:" line above it, if any
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def broken_links(report: Path) -> list[str]:
    """Image links of ``report`` that do not resolve to a file, relative to the report."""
    text = report.read_text(encoding="utf-8")
    return [link for link in LINK.findall(text) if not (report.parent / link).is_file()]


def tables(report: Path) -> list[Table]:
    """Every markdown table of ``report`` with the heading and norm line above it."""
    found: list[Table] = []
    heading, norm, eps, current = "", None, None, None
    for line in report.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading, norm, eps = line.lstrip("# ").strip(), None, None
        elif re.fullmatch(r"(linf|l2|domain):", line.strip()):
            norm = line.strip()[:-1]
        elif re.fullmatch(r"eps [0-9./]+:", line.strip()):
            eps = line.strip()[4:-1]
        if not line.startswith("|"):
            current = None
            continue
        cells = [html.unescape(c.strip()) for c in line.strip()[1:-1].split("|")]
        if current is None:
            current = Table(heading, norm, eps, cells)
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
    grid = csvs.get("transfer_grid.csv")
    if grid is not None and columns[0] == "attack" and set(columns[1:]) <= set(grid.target):
        return check_transfer_means(table, grid)
    effect = csvs.get("ensemble_effect.csv")
    if effect is not None and columns[:2] == ["size", "pairs"]:
        return check_effect_sizes(table, effect)
    certified = csvs.get("certified.csv")
    if certified is not None and any(RADIUS_COLUMN.match(c) for c in columns):
        return check_certified(table, certified)
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


def check_transfer_means(table: Table, grid: pd.DataFrame) -> list[str]:
    """``attack | TARGET ...`` at the ``eps`` line above: per attack and target, the mean
    success (%) over the surrogates whose members do not include the target."""
    if table.eps is None:
        return ["a transfer table with no 'eps E:' line above it"]
    eps = eps_value(table.eps)
    grid = grid[((grid.eps - eps).abs() < 1e-6) & ~grid.white_box.astype(bool)]
    wrong = []
    for cells in table.rows:
        rows = grid[grid.attack == cells[0]]
        for target, shown in zip(table.columns[1:], cells[1:]):
            of_target = rows[rows.target == target]["success_rate"]
            value = 100 * of_target.mean() if len(of_target) else None
            if not close(shown, value):
                wrong.append(f"{cells[0]} on {target}: shows {shown}, the grid's mean {value}")
    return wrong


def check_effect_sizes(table: Table, effect: pd.DataFrame) -> list[str]:
    """``size | pairs | success_rate | ... | mean_member_success_rate``: the pairs of each size
    pooled (fooled over clean-correct images; the members' mean weighted the same way)."""
    wrong = []
    for cells in table.rows:
        group = effect[effect["size"] == int(cells[0])]
        correct = group.clean_correct.sum()
        rate, z = group.fooled.sum() / correct, 1.959963984540054
        centre = (rate + z * z / (2 * correct)) / (1 + z * z / correct)
        half = z * math.sqrt(rate * (1 - rate) / correct + z * z / (4 * correct**2))
        half /= 1 + z * z / correct
        expected = {
            "ci_low": centre - half,  # Wilson's 95% interval
            "ci_high": centre + half,
            "pairs": len(group),
            "success_rate": group.fooled.sum() / correct,
            "mean_member_success_rate": (
                (group.mean_member_success_rate * group.clean_correct).sum() / correct
            ),
        }
        for column, shown in zip(table.columns, cells):
            if column in expected and not close(shown, expected[column]):
                wrong.append(f"size {cells[0]} {column}: shows {shown}, pooled {expected[column]}")
    return wrong


def check_certified(table: Table, certified: pd.DataFrame) -> list[str]:
    """``model | base clean | smoothed clean | r R ... | abstained``: per model, certified.csv's
    certified accuracy at each radius and its per-model figures (the same on every radius)."""
    per_model = {"base clean": "base_clean_acc", "smoothed clean": "smoothed_clean_acc",
                 "abstained": "abstained"}  # fmt: skip
    wrong = []
    for cells in table.rows:
        rows = certified[certified["model"] == cells[0]]
        if not len(rows):
            wrong.append(f"model {cells[0]} is not in certified.csv")
            continue
        for column, shown in zip(table.columns[1:], cells[1:]):
            radius = RADIUS_COLUMN.match(column)
            if radius:
                at = rows[(rows["radius"] - float(radius.group(1))).abs() < 1e-9]
                value = at["certified_acc"].iloc[0] if len(at) else None
            else:
                value = rows[per_model[column]].iloc[0]
            if not close(shown, value):
                wrong.append(f"{cells[0]} {column}: shows {shown}, certified.csv {value}")
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
