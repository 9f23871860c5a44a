"""Publishing: a run's leaderboard rows merged into results/<dataset>-<norm>.csv, rendered as
ranked Markdown and HTML leaderboards, one table per protocol, with a picture per protocol."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from ..checkpoint import confined
from ..contract.norms import Norm
from ..contract.schema import DOMAIN_NORM, LEADERBOARD_COLUMNS
from ..errors import UserError
from ..render.format import csv_text, eps_text, escape, markdown_table, safe_name
from .checks import cells_of, checked_cards, leaderboard_of, one_line, read_leaderboard_file
from .files import write_set
from .html import SEE_ALSO, render_html
from .intervals import correct_count, wilson
from .overturned import read_overturned
from .plot import robust_vs_clean_png
from .protocol import Protocol, row_protocols
from .ranking import is_link, ranked_lines
from .reproductions import RECORD, latest_reproduction, reproduction_text
from .robustness_view import view_file, view_outputs

SCHEMA_VERSION = 3  # 2: model card, report and protocol columns and the robust accuracy's interval;
# 3: the column flags renamed indicators, overturned_from
KEY = ["target", "defense", "attack", "norm", "eps"]
CARD_COLUMNS = ["architecture", "number_forward_passes", "weights_sha256"]
LINK_COLUMNS = ["report", "model_card"]  # paths from the published file (see run_link)
DERIVED_COLUMNS = ["protocol", "robust_ci_low", "robust_ci_high"]  # recomputed at each publish
#: whether `rbg reproduce` of the row's run agreed ("yes", "no", "" untried), and where
REPRODUCTION_COLUMNS = ["reproduced", "reproduced_where"]
#: the standard list's robust accuracy where the adaptive attack overturned it (overturned.py)
PUBLISHED_COLUMNS = [
    *LEADERBOARD_COLUMNS, *CARD_COLUMNS, *LINK_COLUMNS, *DERIVED_COLUMNS, "schema_version",
    "published", *REPRODUCTION_COLUMNS, "overturned_from",
]  # fmt: skip
TEXT_COLUMNS = [
    "architecture", "weights_sha256", *LINK_COLUMNS, "protocol", "published",
    *REPRODUCTION_COLUMNS,
]  # fmt: skip


def read_leaderboard(path: str | Path) -> pd.DataFrame:
    """A leaderboard CSV, or the leaderboard.csv of a run folder, every column checked
    (checks.py): a bad file or value is one line naming the file, row and column."""
    path = Path(path)
    file = path / "leaderboard.csv" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"{path}: no leaderboard.csv here (give a run folder or a CSV)")
    return read_leaderboard_file(file)


def read_published(path: Path) -> pd.DataFrame | None:
    """The published leaderboard at ``path``, checked as a run's is; None where there is none."""
    if not path.exists():
        return None
    if not path.is_file():
        raise UserError("is not a file: a published leaderboard goes there", where=str(path))
    return read_leaderboard_file(path)


def refuse_partial(folder: Path) -> None:
    """A run folder whose run.json marks it partial (`rbg run --only`) holds part of a suite:
    its rows would rank models on fewer attacks than the suite names."""
    try:
        manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a bare CSV, or a run written before run.json existed
    if isinstance(manifest, dict) and manifest.get("partial"):
        raise UserError(
            f"{folder} is a partial run (rbg run --only): publish the whole suite's run; "
            "run it again without --only to finish it"
        )


def publish(run_dir: str | Path, results: str | Path = "results") -> list[Path]:
    """Merge the run's rows into one CSV per (dataset, norm); a rerun of a suite with the same
    seed replaces its own rows. Returns the files written: CSV, Markdown, HTML and a PNG per
    protocol. Every input is checked and every file rendered before the first is written,
    and they are written as one set (files.py): a failure leaves the published
    folder as it was."""
    if Path(results).exists() and not Path(results).is_dir():
        where = str(results)
        raise UserError("is not a folder: --results names where leaderboards live", where=where)
    board = read_leaderboard(run_dir)
    folder = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    refuse_partial(folder)
    # domain-shift rows (no eps ball) stay in the run's own tables; they rank nothing here
    board = board[board["norm"] != DOMAIN_NORM].copy()
    if board.empty:
        raise UserError(f"{run_dir}: no rows to publish (domain rows stay in the run's tables)")
    refuse_repeats(board, leaderboard_file(run_dir))
    run_cards = read_card_list(folder)
    cards = card_columns(run_cards)
    if len(cards):
        board = board.merge(cards, how="left", on=["target", "defense", "norm"])
    board["published"] = dt.date.today().isoformat()
    board["reproduced"], board["reproduced_where"] = reproduction_columns(folder)
    board = board.merge(read_overturned(folder), how="left", on=KEY)
    # adversarial, corruption and certified side by side (robustness_view.py), its CSV after
    # its pages
    try:
        view = view_outputs(run_cards, Path(results), dt.date.today().isoformat())
    except UserError as exc:
        raise exc.at(str(folder / "model_cards.json")) from None
    tables: dict[Path, bytes] = {}
    pages: dict[Path, dict[Path, bytes]] = {}
    for (dataset, norm), rows in board.groupby(["dataset", "norm"], sort=True):
        path = confined(results, f"{safe_name(str(dataset))}-{safe_name(str(norm))}.csv")
        rows = rows.assign(
            report=run_link(folder, "report.md", path.parent),
            model_card=run_link(folder, "model_cards.json", path.parent),
        )
        existing = read_published(path)
        if existing is not None:
            refuse_repeats(existing, path)
        merged, protocols = with_derived_columns(merge_rows(existing, rows))
        beside = view_file(Path(results), str(dataset))  # the dataset's robustness view
        also = beside.stem if beside in view or beside.exists() else None
        pages[path] = render(path, f"{dataset}, {norm} leaderboard", merged, protocols, also)
        tables[path] = reads_back(csv_text(merged).encode(), path)
    outputs = {page: data for rendered in pages.values() for page, data in rendered.items()}
    outputs.update(view)
    outputs.update(tables)  # last: a CSV never runs ahead of its pages
    stale = [old for path in tables for old in stale_pictures(path, set(pages[path]))]
    write_set(outputs, stale)
    return [p for path, rendered in pages.items() for p in (path, *rendered)] + list(view)


def reads_back(data: bytes, path: Path) -> bytes:
    """``data``, the CSV to publish at ``path``, once it reads back as a valid leaderboard
    (so no publish leaves a file that the next one refuses)."""
    try:
        leaderboard_of(cells_of(data, str(path)), str(path))
    except UserError as exc:
        raise UserError(
            f"the merged leaderboard would not read back ({exc.message}); nothing was written",
            where=str(path),
        ) from None
    return data


def leaderboard_file(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    return path / "leaderboard.csv" if path.is_dir() else path


def refuse_repeats(board: pd.DataFrame, file: Path) -> None:
    """A leaderboard holds one row per run (suite, seed), model, attack, norm and eps; a row
    given twice would be published (and ranked) twice."""
    key = ["suite", "seed", *KEY]
    repeated = board.duplicated(key, keep=False)
    if repeated.any():
        rows = [int(i) + 1 for i in board.index[repeated.to_numpy()][:2]]
        first = board.loc[repeated].iloc[0]
        what = ", ".join(f"{c} {first[c]}" for c in key)
        raise UserError(f"rows {rows[0]} and {rows[1]} are the same row ({what})", where=str(file))


def reproduction_columns(folder: Path) -> tuple[str, str]:
    """The run's ``reproduced`` and ``reproduced_where`` (reproductions.py); a record that is
    not one is refused in one line."""
    try:
        return reproduction_text(latest_reproduction(folder))
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise UserError(
            f"not a list of reproduction records ({' '.join(str(exc).split())})",
            where=str(folder / RECORD),
        ) from None


def run_link(folder: Path, name: str, results: Path) -> str:
    """A file of the run as the published leaderboard names it: its path relative to the
    results folder when the run lies inside it, else its absolute path (the same however the
    run folder was given, and found from the published file); empty when the run has no
    such file."""
    if not (folder / name).is_file():
        return ""
    inside = (folder / name).resolve()
    if inside.is_relative_to(results.resolve()):
        return inside.relative_to(results.resolve()).as_posix()
    return Path(os.path.abspath(folder / name)).as_posix()


def with_derived_columns(board: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Protocol]]:
    """``board`` with every published column (those missing in an older file filled), its
    rows' protocol ids and 95% intervals recomputed; and the protocols by id."""
    board = board.copy()
    for column in PUBLISHED_COLUMNS:
        if column not in board.columns:
            board[column] = "" if column in TEXT_COLUMNS else float("nan")
    for column in TEXT_COLUMNS:
        values = board[column].astype(object)
        board[column] = values.where(values.notna(), "").astype(str)
    protocols = row_protocols(board)
    board["protocol"] = [p.id for p in protocols]
    bounds = [
        wilson(correct_count(float(acc), float(n)), float(n))
        for acc, n in zip(pd.to_numeric(board["robust_acc"], errors="coerce"),
                          pd.to_numeric(board["n_eval"], errors="coerce"))
    ]  # fmt: skip
    board["robust_ci_low"] = [low for low, _ in bounds]
    board["robust_ci_high"] = [high for _, high in bounds]
    board["schema_version"] = SCHEMA_VERSION
    others = [c for c in board.columns if c not in PUBLISHED_COLUMNS]
    return board[[*PUBLISHED_COLUMNS, *others]], {p.id: p for p in protocols}


def render(
    path: Path,
    title: str,
    board: pd.DataFrame,
    protocols: dict[str, Protocol],
    see_also: str | None = None,
) -> dict[Path, bytes]:
    """The Markdown and HTML leaderboards to put next to the CSV at ``path`` and one PNG per
    protocol, by the path each goes to (``see_also``: the stem of the dataset's robustness
    view beside them, linked from both pages); nothing is written here."""
    shown, lines = ranked_lines(board, protocols, path.parent)
    pictures, files = {}, {}
    for number, protocol in enumerate(shown, start=1):
        part = lines[lines["protocol"] == protocol.id]
        picture = robust_vs_clean_png(part, f"Protocol {number}: {protocol.split_text()}")
        pictures[protocol.id] = picture
        files[confined(path.parent, f"{path.stem}-{protocol.id}.png")] = picture
    markdown = render_markdown(title, shown, lines, path.stem, see_also)
    page = render_html(title, INTRO, shown, lines, pictures, see_also)
    return {
        path.with_suffix(".md"): markdown.encode(),
        path.with_suffix(".html"): page.encode(),
        **files,
    }


def stale_pictures(path: Path, current: set[Path]) -> list[Path]:
    """The pictures of protocols no longer in the leaderboard at ``path``."""
    stale = re.compile(re.escape(path.stem) + r"-[0-9a-f]{8}\.png")
    return [
        old for old in sorted(path.parent.glob(f"{path.stem}-*.png"))
        if stale.fullmatch(old.name) and old.resolve() not in current
    ]  # fmt: skip


def read_card_list(run_dir: str | Path) -> list[dict]:
    """The model cards of a run (model_cards.json), checked; none for a run written before
    cards existed."""
    path = Path(run_dir) / "model_cards.json"
    if not path.is_file():
        return []
    try:
        return checked_cards(json.loads(path.read_text(encoding="utf-8")), str(path))
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise UserError(f"{path}: not a list of model cards ({one_line(str(exc))})") from None


def card_columns(cards: list[dict]) -> pd.DataFrame:
    """The cards as columns to join on the leaderboard's target, defense and norm."""
    if not cards:
        return pd.DataFrame()
    rows = [
        {
            "target": card["target"],
            "defense": card["defense"],
            "norm": Norm.parse(card["threat_model"]).value,  # checked: checked_cards
            **{key: card.get(key) for key in CARD_COLUMNS},
        }
        for card in cards
    ]
    return pd.DataFrame(rows, columns=["target", "defense", "norm", *CARD_COLUMNS])


def merge_rows(existing: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """``existing`` without the rows of the same suite and seed as ``new``, plus ``new``."""
    if existing is None or existing.empty:
        return new.reset_index(drop=True)
    runs = set(zip(new["suite"], new["seed"]))
    keep = [(s, d) not in runs for s, d in zip(existing["suite"], existing["seed"])]
    merged = pd.concat([existing[keep], new], ignore_index=True)
    return merged.sort_values(["suite", "seed", *KEY], kind="stable").reset_index(drop=True)


INTRO = [
    "Each table ranks models evaluated with one protocol: the same attacks with the same "
    "settings, the same dataset, number of test images and norm. Models evaluated with "
    "different protocols are in different tables: their numbers do not compare.",
    "robust: the worst case over the protocol's attacks (an image counts as robust only if it "
    "survives every attack); for several seeds of a suite, the mean over the seeds, and "
    "spread: the lowest and highest seed. clean: clean accuracy (the mean over seeds).",
    "95% interval: the Wilson score interval of the robust accuracy over n images; for "
    "several seeds pooled, total robust images over total images, n counting the images of "
    "every seed. It covers the sampling of test images, not the variation between seeds.",
    "Ties: a model is tied with the one ranked just above it when their 95% intervals overlap "
    "(touching counts); its rank then reads 5 (= 4): fifth by the numbers, not told apart from "
    "the fourth on this many images. Ties do not chain: 4 and 6 may differ where 5 ties both.",
    "indicators: the indicators of attack failure and sanity checks that fired on the model's "
    "rows (an empty cell: the evaluation passed every one); such rows are marked (flagged) and "
    "should not be trusted until explained (see the run's report). A model marked "
    "(overturned): the adaptive attack's remedies broke images AutoAttack's standard list left "
    "robust, so a standard-only number for it would be too high. model card: the architecture and the first 12 characters of the weights' "
    "sha256, from the run's model_cards.json.",
]
MD_COLUMNS = [
    "rank", "model", "suite", "clean", "robust", "95% interval", "n", "seeds", "spread",
    "indicators", "model card", "report",
]  # fmt: skip


def md_link(text: str, path: object) -> str:
    """A Markdown link to a file path (percent-encoded), or the text alone without one (no
    path: None, empty or a missing value)."""
    text = text.replace("[", "\\[").replace("]", "\\]")
    return f"[{text}]({quote(path, safe='/._-~')})" if is_link(path) and text else text


def marks(line: dict) -> str:
    """What follows a model's name: (flagged) where an indicator fired, (overturned) where the
    adaptive attack broke what the standard list could not."""
    return ("" if not line["indicators"] else " (flagged)") + (
        " (overturned)" if line.get("overturned") else ""
    )


def md_line(line: dict) -> list[str]:
    def num(value: float) -> str:
        return "" if pd.isna(value) else f"{value:.3f}"

    model = line["model"] + marks(line)
    spread = f"{line['robust_min']:.3f}–{line['robust_max']:.3f}" if line["seeds"] > 1 else ""
    ci = "" if pd.isna(line["ci_low"]) else f"{line['ci_low']:.3f}–{line['ci_high']:.3f}"
    return [
        line["rank_text"], model, line["suite"], num(line["clean"]), num(line["robust"]), ci,
        "" if pd.isna(line["n"]) else str(int(line["n"])),
        f"{line['seeds']} ({line['seed_list']})", spread, line["indicators"],
        md_link(line["card_text"], line["card_href"]),
        ", ".join(md_link(text, link) for text, link in line["reports"]),
    ]  # fmt: skip


def render_markdown(
    title: str,
    protocols: list[Protocol],
    lines: pd.DataFrame,
    stem: str,
    see_also: str | None = None,
) -> str:
    out = [f"# {escape(title)}", "", *(p for text in INTRO for p in (escape(text), ""))]
    if see_also is not None:  # the dataset's robustness view, after the reading notes
        out += [f"{SEE_ALSO} [{see_also}.md]({quote(see_also)}.md).", ""]
    for number, protocol in enumerate(protocols, start=1):
        part = lines[lines["protocol"] == protocol.id]
        suites = ", ".join(dict.fromkeys(part["suite"]))
        out += [
            f"## {escape(protocol.heading(number))}",
            "",
            f"Attacks: {escape(protocol.attack_text())}.",
            "",
            escape(f"{protocol.split_text()}; suites: {suites}; protocol id {protocol.id}."),
            "",
            f"![robust against clean accuracy, protocol {number}]({stem}-{protocol.id}.png)",
            "",
        ]
        for eps, at_eps in part.groupby("eps", sort=True):
            shown = pd.DataFrame(
                [md_line(x) for x in at_eps.to_dict("records")], columns=MD_COLUMNS
            )
            out += [f"### eps {eps_text(eps)}", "", markdown_table(shown), ""]
    return "\n".join(out)
