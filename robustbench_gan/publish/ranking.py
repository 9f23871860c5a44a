"""Ranked lines of a published leaderboard: per protocol and eps, one line per model of a suite
(its seeds pooled), with a 95% interval, the spread over seeds, ties, model card and report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..contract.schema import WORST_CASE
from ..render.format import model_name
from .intervals import pooled, tied_with_above
from .protocol import GROUP, Protocol

LINE_KEY = ["protocol", "suite", "target", "defense", "eps"]
SHORT_HASH = 12  # characters of a weights sha256 shown


def headline_rows(board: pd.DataFrame) -> pd.DataFrame:
    """Per model, run, norm and eps > 0, the row whose robust accuracy the leaderboard ranks:
    the worst case over the run's attacks, or the only attack's row (several attack rows
    without a worst case each stand for their own protocol). ``all_indicators``: the indicators
    of every row of that model, run, norm and eps; ``any_overturned``: whether the adaptive
    attack overturned one of them (``overturned_from``)."""
    board = board[board["eps"] > 0].copy()
    if board.empty:
        return board.assign(all_indicators=pd.Series(dtype=str))
    groups = board.groupby(GROUP, dropna=False, sort=False)
    has_worst = groups["attack"].transform(lambda s: bool((s == WORST_CASE).any()))
    board["all_indicators"] = groups["indicators"].transform(joined_indicators)
    overturned = pd.to_numeric(
        board.get("overturned_from", pd.Series(float("nan"), index=board.index)), errors="coerce"
    ).notna()
    board["any_overturned"] = overturned.groupby(
        [board[c] for c in GROUP], dropna=False, sort=False
    ).transform("any")
    return board[(board["attack"] == WORST_CASE) | ~has_worst.astype(bool)]


def joined_indicators(values: pd.Series) -> str:
    return ";".join(sorted({f for v in values for f in str(v).split(";") if f and f != "nan"}))


def ranked_lines(
    board: pd.DataFrame, protocols: dict[str, Protocol], results: Path
) -> tuple[list[Protocol], pd.DataFrame]:
    """The protocols to show, in order (more attacks first, then more images), and the ranked
    lines: per protocol and eps, best mean robust accuracy first (then clean accuracy), each
    line's rank its position; ``tie`` when its interval overlaps the one of the line above."""
    rows = headline_rows(board)
    groups = rows.groupby(LINE_KEY, sort=True, dropna=False)
    lines = [line_of(group, results) for _, group in groups]
    frame = pd.DataFrame(lines)
    if frame.empty:
        return [], frame
    frame = frame.sort_values(
        ["protocol", "eps", "robust", "clean", "model", "suite"],
        ascending=[True, True, False, False, True, True],
    )
    parts = []
    for _, part in frame.groupby(["protocol", "eps"], sort=False):
        tied = tied_with_above(part["ci_low"].tolist(), part["ci_high"].tolist())
        ranks = list(range(1, len(part) + 1))
        part = part.assign(
            rank=ranks,
            tie=tied,
            rank_text=[f"{r} (= {r - 1})" if t else str(r) for r, t in zip(ranks, tied)],
        )
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    shown = [protocols[p] for p in dict.fromkeys(frame["protocol"])]
    shown.sort(key=lambda p: (-len(p.attacks), -(p.n_eval or 0), p.attack_text(), p.id))
    order = {p.id: i for i, p in enumerate(shown)}
    frame = frame.sort_values(
        ["protocol", "eps", "rank", "robust"],
        ascending=[True, True, True, False],
        key=lambda s: s.map(order) if s.name == "protocol" else s,
        kind="stable",
    )
    return shown, frame.reset_index(drop=True)


def line_of(group: pd.DataFrame, results: Path) -> dict[str, object]:
    """One ranked line from a model's headline rows, one per seed."""
    first = group.iloc[0]
    robust = group["robust_acc"].astype(float)
    low, high, total = pooled(robust.tolist(), group["n_eval"].astype(float).tolist())
    seeds = sorted(dict.fromkeys(group["seed"].tolist()), key=seed_order)
    return {
        "protocol": first["protocol"],
        "eps": float(first["eps"]),
        "model": model_name(str(first["target"]), str(first["defense"])),
        "suite": str(first["suite"]),
        "clean": float(group["clean_acc"].astype(float).mean()),
        "robust": float(robust.mean()),
        "robust_min": float(robust.min()),
        "robust_max": float(robust.max()),
        "ci_low": low,
        "ci_high": high,
        "n": total,
        "seeds": len(seeds),
        "seed_list": ", ".join(str(s) for s in seeds),
        "indicators": joined_indicators(group["all_indicators"]),
        "overturned": bool(group["any_overturned"].any()) if "any_overturned" in group else False,
        **card_of(group, results),
        "reports": reports_of(group, results),
    }


def seed_order(seed: object) -> tuple[float, str]:
    """Seeds in numeric order (2 before 10), any that is not a number after them."""
    try:
        return float(seed), ""  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("inf"), str(seed)


def card_of(group: pd.DataFrame, results: Path) -> dict[str, object]:
    """The model card cell: architecture and short weights hash (with several seeds of
    different weights, their number), linked to the first run's model_cards.json that is
    found from the published file (empty when none is)."""

    def values(column: str) -> list[str]:
        found = group[column].dropna() if column in group else []
        return list(dict.fromkeys(str(v) for v in found if str(v)))

    architecture, hashes, cards = (
        values("architecture"),
        values("weights_sha256"),
        values("model_card"),
    )
    text = architecture[:1]
    if len(hashes) == 1:
        text.append(hashes[0][:SHORT_HASH])
    elif hashes:
        text.append(f"({len(hashes)} weights)")
    href = next((found for found in (link(card, results) for card in cards) if found), "")
    return {"card_text": " ".join(text), "card_href": href}


def reports_of(group: pd.DataFrame, results: Path) -> list[tuple[str, str | None]]:
    """(text, link or None) per distinct report of the line's runs: ``report`` for one,
    ``seed N`` for each of several; a path not found from the results is shown, unlinked."""
    paths: dict[str, list[str]] = {}
    reports = group["report"] if "report" in group else pd.Series([""] * len(group))
    for seed, path in zip(group["seed"], reports):
        if isinstance(path, str) and path:
            paths.setdefault(path, []).append(str(seed))
    out = []
    for path, seeds in paths.items():
        text = "report" if len(paths) == 1 else f"seed {', '.join(seeds)}"
        href = link(path, results)
        out.append((text, href) if href else (f"{text}: {path}", None))
    return out


def is_link(path: object) -> bool:
    """Whether a ranked line's link is one: a non-empty path, not None or a missing value
    (pandas may store a missing link of a text column as NaN, which is truthy)."""
    return isinstance(path, str) and bool(path)


def link(path: str, results: Path) -> str | None:
    """``path`` when it names a file from the published leaderboard's folder, else None."""
    try:
        return path if (results / path).is_file() else None
    except (OSError, ValueError):
        return None
