"""Publishing: a run's leaderboard rows merged into results/<dataset>-<norm>.csv, rendered as
ranked Markdown and HTML leaderboards; and comparing two result files or runs."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import pandas as pd

from ..checkpoint import confined, write_atomic
from ..errors import UserError
from .format import csv_text, markdown_table, safe_name
from .schema import DOMAIN_NORM, LEADERBOARD_COLUMNS, WORST_CASE

SCHEMA_VERSION = 1
KEY = ["target", "defense", "attack", "norm", "eps"]


def read_leaderboard(path: str | Path) -> pd.DataFrame:
    """A leaderboard CSV, or the leaderboard.csv of a run folder."""
    path = Path(path)
    file = path / "leaderboard.csv" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"{path}: no leaderboard.csv here (give a run folder or a CSV)")
    try:
        board = pd.read_csv(file, keep_default_na=False, na_values=[""], dtype={"flags": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: not a leaderboard CSV ({exc})") from None
    missing = [c for c in LEADERBOARD_COLUMNS if c not in board.columns]
    if missing:
        raise UserError(f"{file}: not a leaderboard (missing columns: {', '.join(missing)})")
    board["flags"] = board["flags"].fillna("")
    return board


def publish(run_dir: str | Path, results: str | Path = "results") -> list[Path]:
    """Merge the run's rows into one CSV per (dataset, norm); a rerun of a suite with the same
    seed replaces its own rows. Returns the files written (CSV, Markdown and HTML each)."""
    board = read_leaderboard(run_dir)
    # domain-shift rows (no eps ball) stay in the run's own tables; they rank nothing here
    board = board[board["norm"] != DOMAIN_NORM].copy()
    cards = read_cards(run_dir)
    if len(cards):
        board = board.merge(cards, how="left", on=["target", "defense", "norm"])
    board["schema_version"] = SCHEMA_VERSION
    board["published"] = dt.date.today().isoformat()
    written = []
    for (dataset, norm), rows in board.groupby(["dataset", "norm"], sort=True):
        path = confined(results, f"{safe_name(str(dataset))}-{safe_name(str(norm))}.csv")
        merged = merge_rows(read_leaderboard(path) if path.exists() else None, rows)
        write_atomic(path, csv_text(merged).encode())
        ranked = ranking(merged)
        title = f"{dataset}, {norm} leaderboard"
        write_atomic(path.with_suffix(".md"), render_markdown(title, ranked).encode())
        write_atomic(path.with_suffix(".html"), render_html(title, ranked).encode())
        written += [path, path.with_suffix(".md"), path.with_suffix(".html")]
    return written


CARD_COLUMNS = ["architecture", "number_forward_passes", "weights_sha256"]


def read_cards(run_dir: str | Path) -> pd.DataFrame:
    """The model cards of a run (model_cards.json), as columns to join on the leaderboard's
    target, defense and norm; empty for a run written before cards existed."""
    path = Path(run_dir) / "model_cards.json"
    if not path.is_file():
        return pd.DataFrame()
    try:
        cards = json.loads(path.read_text(encoding="utf-8"))
        rows = [
            {
                "target": card["target"],
                "defense": card["defense"],
                "norm": str(card["threat_model"]).lower(),
                **{key: card.get(key) for key in CARD_COLUMNS},
            }
            for card in cards
        ]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a list of model cards ({exc})") from None
    return pd.DataFrame(rows, columns=["target", "defense", "norm", *CARD_COLUMNS])


def merge_rows(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """``existing`` without the rows of the same suite and seed as ``new``, plus ``new``."""
    if existing is None or existing.empty:
        return new.reset_index(drop=True)
    runs = set(zip(new["suite"], new["seed"]))
    keep = [(s, d) not in runs for s, d in zip(existing["suite"], existing["seed"])]
    merged = pd.concat([existing[keep], new], ignore_index=True)
    return merged.sort_values(["suite", "seed", *KEY], kind="stable").reset_index(drop=True)


def ranking(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (suite, model, eps): worst-case robust accuracy (the worst_case row, or the
    only attack's), ranked best first within each eps; flagged models marked."""
    board = board[board["eps"] > 0]
    rows = []
    for (suite, target, defense, eps), group in board.groupby(
        ["suite", "target", "defense", "eps"]
    ):
        worst = group[group["attack"] == WORST_CASE]
        chosen = worst if len(worst) else group.nsmallest(1, "robust_acc")
        flags = sorted({f for value in group["flags"] for f in str(value).split(";") if f})
        rows.append(
            {
                "eps": eps,
                "model": target if defense == "none" else f"{target} [{defense}]",
                "suite": suite,
                "clean_acc": float(group["clean_acc"].iloc[0]),
                "robust_acc": float(chosen["robust_acc"].iloc[0]),
                "attacks": WORST_CASE if len(worst) else str(chosen["attack"].iloc[0]),
                "flags": ";".join(flags),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values(["eps", "robust_acc", "clean_acc"], ascending=[True, False, False])
    frame.insert(1, "rank", frame.groupby("eps").cumcount() + 1)
    return frame.reset_index(drop=True)


def render_markdown(title: str, ranked: pd.DataFrame) -> str:
    lines = [
        f"# {title}",
        "",
        "Ranked by worst-case robust accuracy over the attacks each suite ran. Flagged rows failed "
        "an audit check (see the run's report) and should not be trusted until explained.",
        "",
    ]
    for eps, part in ranked.groupby("eps"):
        shown = part.drop(columns=["eps"]).copy()
        shown["model"] = [
            f"{m} (flagged)" if f else m for m, f in zip(shown["model"], shown["flags"])
        ]
        lines += [f"## eps {eps:g}", "", markdown_table(shown), ""]
    return "\n".join(lines)


def render_html(title: str, ranked: pd.DataFrame) -> str:
    sections = []
    for eps, part in ranked.groupby("eps"):
        body = "".join(
            f'<tr class="{"flagged" if r.flags else ""}"><td>{r.rank}</td><td>{html.escape(r.model)}</td>'
            f"<td>{html.escape(r.suite)}</td><td>{r.clean_acc:.3f}</td><td>{r.robust_acc:.3f}</td>"
            f"<td>{html.escape(r.attacks)}</td><td>{html.escape(r.flags)}</td></tr>"
            for r in part.itertuples()
        )
        sections.append(
            f"<h2>eps {eps:g}</h2><table><tr><th>rank</th><th>model</th><th>suite</th>"
            f"<th>clean</th><th>robust</th><th>attacks</th><th>flags</th></tr>{body}</table>"
        )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "tr.flagged{background:#fde2e2}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        "<p>Ranked by worst-case robust accuracy; flagged rows (red) failed an audit check.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )


def compare(a: str | Path, b: str | Path) -> pd.DataFrame:
    """Rows whose clean or robust accuracy differ between two leaderboards, and rows only in one."""
    left, right = read_leaderboard(a), read_leaderboard(b)
    cols = [*KEY, "clean_acc", "robust_acc"]
    joined = left[cols].merge(
        right[cols], on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True
    )
    joined["where"] = joined["_merge"].map(
        {"left_only": "only A", "right_only": "only B", "both": ""}
    )
    changed = (
        (joined["_merge"] != "both")
        | (joined["robust_acc_a"] != joined["robust_acc_b"])
        | (joined["clean_acc_a"] != joined["clean_acc_b"])
    )
    out = joined[changed].drop(columns=["_merge"]).copy()
    out["robust_delta"] = out["robust_acc_b"] - out["robust_acc_a"]
    return out.reset_index(drop=True)
