"""The published robustness view: per dataset, each model's adversarial, common-corruption and
certified robustness side by side (results/<dataset>-robustness.csv, .md, .html, .png), from
the model cards of the runs whose suites measured corruptions or certified robustness.

The CSV is long, one figure per row (``measure``: clean, adversarial, corruption_mean,
corruption_worst, certified_acc; ``setting``: the threat model and budget, the corruptions and
severities, the worst corruption's name or the L2 radius and noise), each with its 95% interval
and images; the pages pivot it to one row per run and model. A rerun of a suite with the same
seed replaces its rows, as in the leaderboards. Every card field is checked before it is used
and every published file read back is checked as a leaderboard is (checks.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..checkpoint import confined
from ..contract.schema import CARD_SECTION_KEYS
from ..errors import UserError
from ..render.format import csv_text, safe_name
from .checks import LARGEST_CELL, NAMES, SHARE, Number, cells_of, numbers, required_names, shown
from .intervals import correct_count, wilson
from .robustness_pages import RADIUS_SETTING, render_view

MEASURES = ("clean", "adversarial", "corruption_mean", "corruption_worst", "certified_acc")
VIEW_COLUMNS = [
    "dataset", "suite", "seed", "target", "defense", "measure", "setting", "value", "ci_low",
    "ci_high", "n", "published",
]  # fmt: skip
VIEW_NUMBERS = {
    "seed": Number(0, whole=True, required=True),
    "value": Number(0, 1, required=True),
    "ci_low": SHARE,
    "ci_high": SHARE,
    "n": Number(1, whole=True, required=True),
}
VIEW_NAMES = [c for c in NAMES if c in VIEW_COLUMNS] + ["measure"]
KEY = ["suite", "seed", "target", "defense", "measure", "setting"]


def view_file(results: Path, dataset: str) -> Path:
    return confined(results, f"{safe_name(dataset)}-robustness.csv")


def view_outputs(cards: list[dict], results: Path, published: str) -> dict[Path, bytes]:
    """The files of the robustness view that the run's ``cards`` (checked by checks.py's
    checked_cards) change, by path; nothing where no card measured corruptions or certified
    robustness."""
    rows = view_rows(cards, published)
    if rows.empty:
        return {}
    outputs: dict[Path, bytes] = {}
    for dataset, new in rows.groupby("dataset", sort=True):
        path = view_file(results, str(dataset))
        existing = read_view(path) if path.exists() else None
        merged = merge_view(existing, new)
        data = csv_text(merged).encode()
        read_view_bytes(data, str(path))  # it reads back, or nothing is written
        title = f"{dataset}: adversarial, corruption and certified robustness"
        outputs.update(render_view(path, title, merged))
        outputs[path] = data
    return outputs


def view_rows(cards: list[dict], published: str) -> pd.DataFrame:
    """The long rows of the cards of models with a ``corruptions`` or ``certified`` field."""
    rows: list[dict] = []
    done: set[tuple[str, str]] = set()
    for number, card in enumerate(cards, start=1):
        if not any(key in card for key in CARD_SECTION_KEYS):
            continue
        where = f"card {number}"
        model = (card["target"], card["defense"])
        base = {
            "dataset": text(card, "dataset", where), "suite": text(card, "suite", where),
            "seed": whole(card, "seed", where, low=0), "target": model[0], "defense": model[1],
            "published": published,
        }  # fmt: skip
        n = whole(card, "n_examples", where)
        if card.get("threat_model") is not None:
            setting = f"{card['threat_model']} {text(card, 'eps', where)}"
            robust = share(card, "robust_acc", where)
            rows.append(base | figure("adversarial", setting, robust, card, "robust_acc_ci", n))
        if model in done:  # clean, corruptions and certified: the same on every card of it
            continue
        done.add(model)
        clean = share(card, "clean_acc", where)
        rows.append(base | figure("clean", "", clean, {}, "", n))
        corruptions, certified = (card.get(key) for key in CARD_SECTION_KEYS)
        if corruptions is not None:
            rows += [base | row for row in corruption_rows(corruptions, where)]
        if certified is not None:
            rows += [base | row for row in certified_rows(certified, where)]
    return pd.DataFrame(rows, columns=VIEW_COLUMNS)


def corruption_rows(found: object, where: str) -> list[dict]:
    where = f"{where}, {CARD_SECTION_KEYS[0]}"
    fields = mapping(found, where)
    n = whole(fields, "n_examples", where)
    severities = fields.get("severities")
    if not isinstance(severities, list) or not all(isinstance(s, int) for s in severities):
        raise UserError(f"{where}, severities: {shown(severities)} is not a list of severities")
    counted = whole(fields, "n_corruptions", where)
    setting = f"{counted} corruptions, severities {', '.join(str(s) for s in severities)}"
    mca = share(fields, "mean_corruption_acc", where)
    worst = share(fields, "worst_corruption_acc", where)
    return [
        figure("corruption_mean", setting, mca, fields, "mean_corruption_acc_ci", n, where),
        figure(
            "corruption_worst", text(fields, "worst_corruption", where), worst, fields,
            "worst_corruption_acc_ci", n, where,
        ),
    ]  # fmt: skip


def certified_rows(found: object, where: str) -> list[dict]:
    where = f"{where}, {CARD_SECTION_KEYS[1]}"
    fields = mapping(found, where)
    n = whole(fields, "n_examples", where)
    sigma = fields.get("sigma")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise UserError(f"{where}, sigma: {shown(sigma)} is not a positive number")
    radii = mapping(fields.get("certified_acc_by_radius"), f"{where}, certified_acc_by_radius")
    rows = []
    for radius, at in radii.items():
        place = f"{where}, radius {shown(radius)}"
        try:
            value = float(radius)
        except ValueError:
            raise UserError(f"{place}: not a radius") from None
        if not 0 <= value < math.inf:
            raise UserError(f"{place}: not a radius")
        at = mapping(at, place)
        setting = RADIUS_SETTING.format(radius=value, sigma=sigma)
        rows.append(
            figure("certified_acc", setting, share(at, "certified_acc", place), at, "ci", n, place)
        )
    return rows


def figure(
    measure: str, setting: str, value: float, fields: Mapping, ci: str, n: int, where: str = ""
) -> dict:
    """A row's figure: its value, interval (the card's, or Wilson's over ``n``) and ``n``."""
    bounds = fields.get(ci) if ci else None
    if bounds is None:
        low, high = wilson(correct_count(value, n), n)
    elif (
        isinstance(bounds, list) and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        and 0 <= bounds[0] <= value <= bounds[1] <= 1
    ):  # fmt: skip
        low, high = float(bounds[0]), float(bounds[1])
    else:
        raise UserError(f"{where}, {ci}: {shown(bounds)} is not an interval around {value:g}")
    return {"measure": measure, "setting": setting, "value": value,
            "ci_low": low, "ci_high": high, "n": n}  # fmt: skip


def mapping(found: object, where: str) -> Mapping:
    if not isinstance(found, dict):
        raise UserError(f"{where}: {shown(found)} is not a table of fields")
    return found


def text(fields: Mapping, key: str, where: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > LARGEST_CELL:
        raise UserError(f"{where}, {key}: {shown(value)} is not a name")
    return value


def whole(fields: Mapping, key: str, where: str, low: int = 1) -> int:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1e15:
        raise UserError(f"{where}, {key}: {shown(value)} is not a whole number from {low}")
    return value


def share(fields: Mapping, key: str, where: str) -> float:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UserError(f"{where}, {key}: {shown(value)} is not a number from 0 to 1")
    return float(value)


def merge_view(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """``existing`` without the rows of the same suite and seed as ``new``, plus ``new``,
    sorted; a row given twice is refused."""
    if existing is not None and len(existing):
        runs = set(zip(new["suite"], new["seed"]))
        keep = [(s, d) not in runs for s, d in zip(existing["suite"], existing["seed"])]
        new = pd.concat([existing[keep], new], ignore_index=True)
    order = {m: i for i, m in enumerate(MEASURES)}
    new = new.assign(_order=new["measure"].map(order), _defended=new["defense"] != "none")
    by = ["suite", "seed", "target", "_defended", "defense", "_order"]  # the undefended first
    new = new.sort_values(by, kind="stable")
    repeated = new.duplicated(KEY, keep=False)
    if repeated.any():
        first = new[repeated].iloc[0]
        raise UserError("the same figure twice: " + ", ".join(f"{c} {first[c]}" for c in KEY))
    return new.reset_index(drop=True)[VIEW_COLUMNS]


def read_view(path: Path) -> pd.DataFrame:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot be read ({exc.strerror or exc})", where=str(path)) from None
    return read_view_bytes(data, str(path))


def read_view_bytes(data: bytes, where: str) -> pd.DataFrame:
    """A published robustness view, every column checked (a number in its range, a name not
    empty, a known measure), text kept as written."""
    cells = cells_of(data, where)
    missing = [c for c in VIEW_COLUMNS if c not in cells.columns]
    if missing:
        raise UserError(f"not a robustness view: no column {', '.join(missing)}", where=where)
    out = {}
    for column in VIEW_COLUMNS:
        values = cells[column]
        if column in VIEW_NUMBERS:
            out[column] = numbers(values, VIEW_NUMBERS[column], f"column {column}", where)
            continue
        if column in VIEW_NAMES:
            required_names(values, column, where)
        if column == "measure" and not values.isin(MEASURES).all():
            row = values.index[(~values.isin(MEASURES)).to_numpy()][0]
            raise UserError(
                f"row {row}, column measure: {shown(values[row])} is not one of "
                f"{', '.join(MEASURES)}",
                where=where,
            )
        out[column] = values.fillna("").astype(str)
    return pd.DataFrame(out, index=cells.index).reset_index(drop=True)
