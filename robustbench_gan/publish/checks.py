"""The CSVs `rbg publish` and `rbg compare` read, checked before anything is computed from them.

A file that is not UTF-8 text or not a table, a header with a nameless or repeated column, or
a cell too large for a leaderboard is refused; in a leaderboard (a run's leaderboard.csv or a
published results/<dataset>-<norm>.csv) every known column is checked row by row: numbers lie
in their range (accuracies and rates in [0, 1], budgets, norms, times and passes >= 0, every
one finite), counts are whole numbers, names are not empty. Each refusal is one line naming
the file, and the row (row 1 is the first under the header) and column where there is one.
Text stays text as written: a cell that would start a spreadsheet formula is neutralised
when a CSV is written (format.csv_text), and read back as written then.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract.norms import Norm
from ..contract.schema import DOMAIN_NORM, LATER_COLUMNS, LEADERBOARD_COLUMNS, upgrade_board
from ..errors import UserError
from ..render.format import FORMULA_STARTS

#: the most characters of one cell: a leaderboard's cells are names, numbers and short JSON
LARGEST_CELL = 100_000
#: the largest number a column takes (keeps counts exact in floats and products finite)
LARGEST = 1e15
NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
INFINITE = r"[+-]?(?:inf|infinity)"
FRACTION = re.compile(r"\s*(\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*")


@dataclass(frozen=True)
class Number:
    """What a numeric column holds: a number from ``low`` to ``high``, whole or not; a
    ``required`` one is never missing."""

    low: float
    high: float = LARGEST
    whole: bool = False
    required: bool = False

    def text(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:g}"


SHARE = Number(0, 1)
AMOUNT = Number(0)
#: every numeric column of a leaderboard and a published one (eps may be missing on domain rows)
NUMBERS: dict[str, Number] = {
    "eps": Number(0, required=True),
    "n_eval": Number(1, whole=True),
    "clean_acc": Number(0, 1, required=True),
    "robust_acc": Number(0, 1, required=True),
    "attack_success_rate": SHARE,
    "mean_linf": AMOUNT,
    "mean_l2": AMOUNT,
    "seconds": AMOUNT,
    "forward_passes": AMOUNT,
    "backward_passes": AMOUNT,
    "seed": Number(0, whole=True, required=True),
    "number_forward_passes": Number(1, whole=True),
    "robust_ci_low": SHARE,
    "robust_ci_high": SHARE,
    "schema_version": Number(1, whole=True),
    "overturned_from": SHARE,
}
#: the text that says what a row is of: never empty
NAMES = ["suite", "dataset", "target", "defense", "attack", "norm"]
#: text columns with a fixed set of values (or empty)
CHOICES = {"reproduced": ("yes", "no")}
TEXT = [
    "attack_params", "device", "indicators", "versions", "cell_id", "architecture", "weights_sha256",
    "report", "model_card", "protocol", "published", "reproduced_where",
]  # fmt: skip


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with every run of whitespace (newlines too) as one space, cut at ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def shown(value: object) -> str:
    """A cell as an error message quotes it: repr'd (one line), cut after 40 characters."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def read_cells(file: str | Path) -> pd.DataFrame:
    """A CSV file's table, every cell as its text (NaN where empty), its first line the column
    names and its rows indexed from 1. A file that cannot be read, is not UTF-8 text, is empty
    or is not a table, a column without a name or repeated and a cell longer than LARGEST_CELL
    are refused in one line naming the file."""
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot be read ({one_line(exc.strerror or str(exc))})", where=str(file)
        ) from None
    return cells_of(data, str(file))


def cells_of(data: bytes, where: str) -> pd.DataFrame:
    """The table of a CSV file's bytes, as :func:`read_cells` returns it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError("is UTF-16 text, not a CSV: save it as UTF-8", where=where)
    if b"\x00" in data:
        raise UserError("is a binary file (it holds NUL bytes), not a CSV", where=where)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise UserError(
            f"is not UTF-8 text (byte 0x{byte:02x} at position {exc.start}), not a CSV", where=where
        ) from None
    if not text.strip():
        raise UserError("is empty, not a CSV (no header, no rows)", where=where)
    try:
        frame = pd.read_csv(
            io.StringIO(text), header=None, dtype=str, keep_default_na=False, na_values=[""]
        )
    except (ValueError, OverflowError) as exc:  # pandas' ParserError is a ValueError
        raise UserError(f"is not a CSV table ({one_line(str(exc))})", where=where) from None
    names = [None if pd.isna(name) else str(name) for name in frame.iloc[0]]
    for number, name in enumerate(names, start=1):
        if name is None or not name.strip():
            raise UserError(f"column {number} of the header has no name", where=where)
        if names.index(name) != number - 1:
            first = names.index(name) + 1
            raise UserError(
                f"column {shown(name)} appears twice in the header (columns {first} and {number})",
                where=where,
            )
    for index, column in enumerate(frame.columns):
        long = frame[column].str.len() > LARGEST_CELL
        if long.any():
            row = int(np.argmax(long.to_numpy()))
            place = "the header" if row == 0 else f"row {row}"
            raise UserError(
                f"{place}, column {index + 1}: a cell of {len(frame.iat[row, index])} "
                f"characters (at most {LARGEST_CELL}): not a leaderboard's",
                where=where,
            )
    body = frame.iloc[1:].copy()
    body.columns = names
    body.index = range(1, len(body) + 1)
    return body


def read_leaderboard_file(file: Path) -> pd.DataFrame:
    """A leaderboard CSV (a run's or a published one) with every column checked and typed:
    numbers as floats (ints where every cell is written as one, as pandas reads them), text as
    str (NaN where empty); columns added after the first release filled with NaN where absent."""
    return leaderboard_of(read_cells(file), str(file))


def leaderboard_of(cells: pd.DataFrame, where: str) -> pd.DataFrame:
    """The leaderboard of a CSV's cells, as :func:`read_leaderboard_file` returns it (one
    written before a column was renamed under today's name: contract/schema.py)."""
    cells = upgrade_board(cells)
    missing = [c for c in LEADERBOARD_COLUMNS if c not in cells.columns]
    if [c for c in missing if c not in LATER_COLUMNS]:
        hint = ""
        if len(cells.columns) == 1 and ";" in str(cells.columns[0]):
            hint = "; its values are separated by ';', a leaderboard's by ','"
        raise UserError(
            f"not a leaderboard (missing columns: {', '.join(missing)}{hint})", where=where
        )
    if cells.empty:
        raise UserError("holds no rows (a header only): not a leaderboard", where=where)
    formula = [c for c in cells.columns if c.startswith(FORMULA_STARTS)]
    if formula:  # cells are neutralised when written (format.csv_text), a header is not
        raise UserError(
            f"column {shown(formula[0])} of the header would start a spreadsheet formula",
            where=where,
        )
    board = checked(cells, where)
    for column in missing:  # a leaderboard written before these columns existed
        board.insert(LEADERBOARD_COLUMNS.index(column), column, float("nan"))
    board["indicators"] = board["indicators"].astype(object).fillna("")
    return board.reset_index(drop=True)


def checked(cells: pd.DataFrame, where: str) -> pd.DataFrame:
    """The leaderboard's cells typed, each column checked as the module docstring says."""
    domain = (cells["norm"] == DOMAIN_NORM).to_numpy()
    out = {}
    for column in cells.columns:
        values = cells[column]
        if column in NUMBERS:
            may_miss = domain if column == "eps" else None  # a translated test set has no ball
            out[column] = numbers(values, NUMBERS[column], f"column {column}", where, may_miss)
        elif column in NAMES:
            out[column] = required_names(values, column, where)
        elif column in CHOICES:
            allowed = CHOICES[column]
            wrong = values.notna() & ~values.isin(allowed)
            if wrong.any():
                row = values.index[wrong.to_numpy()][0]
                raise UserError(
                    f"row {row}, column {column}: {shown(values[row])} is not one of "
                    f"{', '.join(allowed)} (or empty)",
                    where=where,
                )
            out[column] = values
        elif column in TEXT:
            out[column] = values
        else:
            out[column] = inferred(values)
    return pd.DataFrame(out, index=cells.index)


def required_names(values: pd.Series, column: str, where: str) -> pd.Series:
    """``values`` (a column of names), refused at its first empty cell."""
    empty = values.isna() | (values.str.strip() == "")
    if empty.any():
        row = values.index[empty.to_numpy()][0]
        raise UserError(f"row {row}, column {column}: empty; a name is required", where=where)
    return values


def numbers(
    values: pd.Series, rule: Number, place: str, where: str, may_miss: np.ndarray | None = None
) -> pd.Series:
    """A column of cells as numbers by ``rule``; the first cell that breaks it is refused,
    naming its row. Empty and ``nan`` cells are missing values (NaN); ``may_miss`` marks rows
    where a required number may be missing."""
    text = values.str.strip()
    missing = (values.isna() | text.str.lower().isin(["", "nan"])).to_numpy(dtype=bool)
    syntax = text.str.fullmatch(NUMBER) | text.str.fullmatch(INFINITE, case=False)
    bad = ~missing & ~syntax.fillna(False).to_numpy(dtype=bool)
    if bad.any():
        row = values.index[bad][0]
        raise UserError(
            f"row {row}, {place}: {shown(values[row])} is not a number{fraction_hint(values[row])}",
            where=where,
        )
    parsed = text.where(~missing).astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        outside = ~missing & ~((parsed >= rule.low) & (parsed <= rule.high))
        if rule.whole:
            outside |= ~missing & (np.floor(parsed) != parsed)
    absent = missing & rule.required
    if may_miss is not None:
        absent &= ~may_miss
    problems = outside | absent
    if problems.any():
        at = int(np.argmax(problems))
        row = values.index[at]
        if pd.isna(values[row]) or not str(values[row]).strip():
            what = f"empty; {rule.text()} is required"
        else:
            what = f"{shown(values[row])} is not {rule.text()}"
        raise UserError(f"row {row}, {place}: {what}", where=where)
    if rule.whole and not missing.any() and text.str.fullmatch(r"[+-]?\d+").all():
        return pd.Series(parsed.astype(np.int64), index=values.index)  # as pandas reads them
    return pd.Series(parsed, index=values.index)


def fraction_hint(value: object) -> str:
    """For a cell such as ``8/255``: that a CSV holds its decimal, and which."""
    match = FRACTION.fullmatch(str(value))
    if not match or float(match.group(2)) == 0:
        return ""
    decimal = float(match.group(1)) / float(match.group(2))
    return f" (a CSV holds a fraction as its decimal: {decimal!r})"


def inferred(values: pd.Series) -> pd.Series:
    """A column this module does not know: numbers when every cell is a finite number (whole
    ones as ints when none is missing, as pandas reads them), else text as written."""
    present = values.dropna().str.strip()
    if not present.str.fullmatch(NUMBER).all():
        return values
    parsed = values.str.strip().astype(float)
    finite = parsed.dropna().abs() <= LARGEST
    if not finite.all():
        return values
    if present.str.fullmatch(r"[+-]?\d+").all() and values.notna().all():
        return parsed.astype(np.int64)
    return parsed


#: what a model card gives a published row, and what each must be (None: missing)
CARD_TEXT = ("architecture", "weights_sha256")


def checked_cards(cards: object, where: str) -> list[dict]:
    """The model cards of a run's model_cards.json as published rows take them: a list of
    cards, each naming its target, defense and threat model, with a whole number of forward
    passes (1 or more) and text architecture and weights hash where given; one card per model
    and threat model. Anything else is refused in one line naming the card and field."""
    if not isinstance(cards, list):
        raise UserError(f"not a list of model cards (a {type(cards).__name__})", where=where)
    rows, seen = [], {}
    for number, card in enumerate(cards, start=1):
        place = f"card {number}"
        if not isinstance(card, dict):
            raise UserError(f"{place} is not a model card (a {type(card).__name__})", where=where)
        for key in ("target", "defense", "threat_model"):
            if not isinstance(card.get(key), str) or not card[key].strip():
                raise UserError(
                    f"{place}, {key}: {shown(card.get(key))} is not a name", where=where
                )
        if Norm.parse(card["threat_model"]) is None:
            shown_norms = ", ".join(n.display for n in Norm)
            raise UserError(
                f"{place}, threat_model: {shown(card['threat_model'])} is not one of {shown_norms}",
                where=where,
            )
        passes = card.get("number_forward_passes")
        whole = isinstance(passes, (int, float)) and not isinstance(passes, bool)
        if passes is not None and not (whole and 1 <= passes <= LARGEST and passes == int(passes)):
            rule = NUMBERS["number_forward_passes"].text()
            raise UserError(
                f"{place}, number_forward_passes: {shown(passes)} is not {rule}", where=where
            )
        for key in CARD_TEXT:
            value = card.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > LARGEST_CELL):
                raise UserError(f"{place}, {key}: {shown(value)} is not a text", where=where)
        key = (card["target"], card["defense"], Norm.parse(card["threat_model"]).value)
        if key in seen:
            raise UserError(
                f"cards {seen[key]} and {number} are both of {key[0]} [{key[1]}] at {key[2]}",
                where=where,
            )
        seen[key] = number
        rows.append(card)
    return rows
