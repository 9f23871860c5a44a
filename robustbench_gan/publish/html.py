"""The published leaderboard as one self-contained HTML page: inline CSS, pictures as data
URIs, every piece of user text escaped."""

from __future__ import annotations

import base64
import html
import math
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..render.format import eps_text
from .protocol import Protocol
from .ranking import is_link

COLUMNS = [
    "rank", "model", "suite", "clean", "robust", "95% interval", "n", "seeds", "spread",
    "indicators", "model card", "report",
]  # fmt: skip
#: the reading notes' line that links the dataset's robustness view (robustness_view.py)
SEE_ALSO = "The same models' adversarial, common-corruption and certified robustness side by side:"
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}"
    "h2{margin-top:2em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:14px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;white-space:nowrap}"
    "th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.flagged{background:#fde2e2}tr.tie td.rank{color:#8a5a00}"
    "tr.overturned td.model{font-weight:bold;color:#8a1c1c}"
    "div.wide{overflow-x:auto}p.protocol{font-family:monospace;font-size:90%}img{max-width:100%;height:auto}"
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative or absolute file path as an attribute value (no scheme can slip in)."""
    return esc(quote(path, safe="/._-~"))


def number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3f}"


def interval(low: float, high: float) -> str:
    return "" if math.isnan(low) else f"{low:.3f}–{high:.3f}"


def cells(line: dict[str, Any]) -> list[tuple[str, str]]:
    """(class, inner HTML) of each cell of a ranked line."""
    spread = f"{line['robust_min']:.3f}–{line['robust_max']:.3f}" if line["seeds"] > 1 else ""
    card = esc(line["card_text"])
    if is_link(line["card_href"]) and card:
        card = f'<a href="{href(line["card_href"])}">{card}</a>'
    reports = ", ".join(
        f'<a href="{href(link)}">{esc(text)}</a>' if is_link(link) else esc(text)
        for text, link in line["reports"]
    )
    return [
        ("rank", esc(line["rank_text"])),
        ("model", esc(line["model"] + (" (overturned)" if line.get("overturned") else ""))),
        ("", esc(line["suite"])),
        ("num", number(line["clean"])),
        ("num", number(line["robust"])),
        ("num", interval(line["ci_low"], line["ci_high"])),
        ("num", "" if math.isnan(line["n"]) else str(int(line["n"]))),
        ("", f"{line['seeds']} ({esc(line['seed_list'])})"),
        ("num", spread),
        ("", esc(line["indicators"])),
        ("", card),
        ("", reports),
    ]


def table(part: pd.DataFrame) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = []
    for line in part.to_dict("records"):
        found = (("flagged", line["indicators"]), ("tie", line["tie"]),
                 ("overturned", line.get("overturned")))  # fmt: skip
        kinds = " ".join(k for k, on in found if on)
        tds = "".join(
            f'<td class="{kind}">{inner}</td>' if kind else f"<td>{inner}</td>"
            for kind, inner in cells(line)
        )
        body.append(f'<tr class="{kinds}">{tds}</tr>' if kinds else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(
    title: str,
    intro: list[str],
    protocols: list[Protocol],
    lines: pd.DataFrame,
    pictures: dict[str, bytes],
    see_also: str | None = None,
) -> str:
    """The page: title, the reading notes (and a link to the dataset's robustness view
    ``see_also``.html), then per protocol its attacks, its picture and a ranked table per
    eps."""
    sections = []
    for number_, protocol in enumerate(protocols, start=1):
        part = lines[lines["protocol"] == protocol.id]
        suites = ", ".join(dict.fromkeys(part["suite"]))
        parts = [
            f'<h2 id="protocol-{esc(protocol.id)}">{esc(protocol.heading(number_))}</h2>',
            f'<p class="protocol">Attacks: {esc(protocol.attack_text())}.</p>',
            f"<p>{esc(protocol.split_text())}; suites: {esc(suites)}; "
            f"protocol id {esc(protocol.id)}.</p>",
        ]
        if protocol.id in pictures:
            data = base64.b64encode(pictures[protocol.id]).decode("ascii")
            parts.append(
                f'<p><img alt="robust against clean accuracy, protocol {number_}" '
                f'src="data:image/png;base64,{data}"></p>'
            )
        for eps, at_eps in part.groupby("eps", sort=True):
            heading = f"<h3>eps {esc(eps_text(eps))}</h3>"
            parts += [heading, f'<div class="wide">{table(at_eps)}</div>']
        sections.append("\n".join(parts))
    notes = "".join(f"<p>{esc(text)}</p>" for text in intro)
    if see_also is not None:
        page = href(see_also + ".html")
        notes += f'<p>{esc(SEE_ALSO)} <a href="{page}">{esc(see_also)}.html</a>.</p>'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{esc(title)}</h1>\n{notes}\n" + "\n".join(sections) + "\n</body></html>\n"
    )
