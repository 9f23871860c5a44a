"""Evaluation protocols of leaderboard rows: the attacks with their settings, the norm, the
dataset and the number of evaluated images, as a key, a short id and a readable line."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..render.format import FORMULA_STARTS

#: a leaderboard row's experiment: the rows of one model of one run at one norm and eps
GROUP = ["suite", "seed", "target", "defense", "norm", "eps"]


@dataclass(frozen=True)
class Protocol:
    """What a robust accuracy was measured with: rows of equal protocols rank together."""

    dataset: str
    norm: str
    n_eval: int | None
    attacks: tuple[str, ...]  # canonical JSON of each attack's spec, sorted

    @property
    def key(self) -> str:
        fields = {
            "dataset": self.dataset,
            "norm": self.norm,
            "n_eval": self.n_eval,
            "attacks": list(self.attacks),
        }
        return json.dumps(fields, sort_keys=True)

    @property
    def id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:8]

    def attack_text(self) -> str:
        """The attacks and their settings, e.g. ``fgsm; pgd (steps=10)``."""
        return "; ".join(describe(json.loads(spec)) for spec in self.attacks)

    def heading(self, number: int) -> str:
        """``Protocol N: <attacks>``; for a long list the names alone, or else their number."""
        text = self.attack_text()
        if len(text) > 70:
            text = "; ".join(str(json.loads(spec).get("name", "?")) for spec in self.attacks)
        if len(text) > 70:
            text = f"{len(self.attacks)} attacks"
        return f"Protocol {number}: {text}"

    def split_text(self) -> str:
        images = "? images" if self.n_eval is None else f"{self.n_eval} images"
        return f"{self.dataset}, {images} per run, {self.norm}"


def parse_params(value: object, label: str) -> dict[str, Any]:
    """A row's ``attack_params`` as a dict; a missing or unreadable one stands for the attack
    of that label without known settings."""
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"name": label}


def plain_label(label: str) -> str:
    """A label as the suite wrote it: without the apostrophe that a CSV puts before a cell
    that would start a formula (a worst-case row's JSON holds the label as written)."""
    if label.startswith("'") and label[1:].startswith(FORMULA_STARTS):
        return label[1:]
    return label


def combined_labels(params: dict[str, Any]) -> list[str] | None:
    """The labels a worst-case row combines (its ``{"attacks": [...]}``), else None."""
    attacks = params.get("attacks")
    if "name" in params or not isinstance(attacks, list):
        return None
    return [str(a) for a in attacks]


def canonical(spec: dict[str, Any]) -> str:
    """An attack's spec as canonical JSON: its name, its params and where its code comes from."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)


def row_protocols(board: pd.DataFrame) -> list[Protocol]:
    """Each row's protocol: its own attack's, or for a worst-case row the attacks it combines,
    their settings read from the sibling rows of the same model, run, norm and eps."""
    specs = [parse_params(p, str(a)) for p, a in zip(board["attack_params"], board["attack"])]
    siblings: dict[tuple, dict[str, dict[str, Any]]] = {}
    keys = [group_key(row) for row in board[GROUP].itertuples(index=False)]
    for key, label, spec in zip(keys, board["attack"], specs):
        if combined_labels(spec) is None:
            siblings.setdefault(key, {})[plain_label(str(label))] = spec
    out = []
    for key, spec, dataset, norm, n_eval in zip(
        keys, specs, board["dataset"], board["norm"], board["n_eval"]
    ):
        labels = combined_labels(spec)
        if labels is None:
            parts = [spec]
        else:
            known = siblings.get(key, {})
            parts = [known.get(label, {"name": label}) for label in labels]
        out.append(
            Protocol(
                dataset=str(dataset),
                norm=str(norm),
                n_eval=count(n_eval),
                attacks=tuple(sorted({canonical(p) for p in parts})),
            )
        )
    return out


def group_key(row: tuple) -> tuple:
    """A hashable key of a row's GROUP values (NaN eps as None, so it matches itself)."""
    return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)


def count(value: object) -> int | None:
    """A number of images, or None when it is missing."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(round(number))


def describe(spec: dict[str, Any]) -> str:
    """``name (k=v, ...)`` for an attack's spec; a composite's parts spelled out the same way.
    Where the code of a plugin comes from is not shown (it stays in the protocol's key)."""
    name = str(spec.get("name", "?"))
    params = spec.get("params")
    if not isinstance(params, dict):  # a part of a composite holds its settings inline
        params = {k: v for k, v in spec.items() if k not in ("name", "origin")}
    if not params:
        return name
    settings = ", ".join(f"{k}={value_text(v)}" for k, v in sorted(params.items()))
    return f"{name} ({settings})"


def value_text(value: Any) -> str:
    if isinstance(value, dict) and "name" in value:
        return describe(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, (bool, dict)) or value is None:
        return json.dumps(value, sort_keys=True)
    return str(value)
