"""``[transfer_grid]``: the transfer attacks, budgets, surrogates and targets of a transfer
grid, read and checked once, up front (evaluations/transfer_grid.py runs it).

    [transfer_grid]
    attacks = ["bim", "mifgsm", { name = "sgm", sources = ["resnet18"] }]
    eps = ["8/255", "16/255"]
    n = 500                                  # test images (default: [eval] n)
    sources = ["small_cnn", "resnet18"]      # single surrogates (default: every model)
    targets = ["small_cnn", "resnet18", "vgg"]  # (default: every model)
    surrogates = [["small_cnn", "resnet18", "vgg"]]  # ensembles, one more source each
    fuse = "logits"                          # an ensemble's fusion: logits, probabilities, loss

    [transfer_grid.ensemble_effect]          # success as the ensemble grows (leave-target-out)
    attack = "mifgsm"                        # one of the attacks above (its label)
    eps = "16/255"                           # one of the budgets above
    pool = ["small_cnn", "resnet18", "vgg", "mlp", "vit"]   # the members, in the order added
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contract.fields import budgets, construct, parse_eps, table, typed, unknown_keys
from ..contract.records import Record
from ..contract.suite import Suite
from ..errors import UserError
from ..models.ensemble import SURROGATE_FUSIONS
from ..registry import ATTACKS

GRID_KEYS = {"attacks", "eps", "n", "sources", "targets", "surrogates", "fuse", "ensemble_effect"}
EFFECT_KEYS = {"attack", "eps", "pool"}
#: joins an ensemble's member labels into its source label
JOIN = " & "


@dataclass(frozen=True)
class GridAttack(Record):
    """One transfer attack: its label, its spec (``{"name", "params"}``) and, where it sets
    them, its own single surrogates (SGM needs residual ones)."""

    label: str
    spec: Mapping[str, Any]
    sources: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EnsembleEffect(Record):
    """The leave-target-out curve: ``attack`` (a label) at ``eps``, members of ``pool``."""

    attack: str
    eps: float
    pool: tuple[str, ...]

    def ensembles(self) -> list[tuple[str, ...]]:
        """The surrogate sets crafted on: every member alone, and for each held-out member
        of the pool the first 2, 3, ... of the others in pool order (sets shared between
        held-out members are crafted once; each is then judged on every model outside it)."""
        found: dict[tuple[str, ...], None] = {(member,): None for member in self.pool}
        for held_out in self.pool:
            others = [m for m in self.pool if m != held_out]
            for size in range(2, len(others) + 1):
                found.setdefault(tuple(others[:size]), None)
        return list(found)


@dataclass(frozen=True)
class GridSettings(Record):
    attacks: tuple[GridAttack, ...]
    eps: tuple[float, ...]
    n: int | None
    sources: tuple[tuple[str, ...], ...]  # each a surrogate's members (one: a single model)
    targets: tuple[str, ...]
    fuse: str
    effect: EnsembleEffect | None = None

    def sources_of(self, attack: GridAttack) -> list[tuple[str, ...]]:
        """The surrogates of the grid proper for ``attack``: its own, else the grid's."""
        if attack.sources is None:
            return list(self.sources)
        return [(member,) for member in attack.sources]


def source_label(members: tuple[str, ...]) -> str:
    return JOIN.join(members)


def read_grid(raw: Mapping[str, Any], suite: Suite) -> GridSettings | None:
    """``[transfer_grid]`` of a suite, checked against its models (None when absent)."""
    if "transfer_grid" not in raw:
        return None
    entry = table(raw, "transfer_grid")
    unknown_keys(entry, GRID_KEYS, "transfer_grid")
    eps = budgets(entry.get("eps"), "transfer_grid.eps")
    if eps[0] <= 0 or eps[-1] > 1:
        raise UserError("transfer budgets are Linf, in (0, 1]", where="transfer_grid.eps")
    models = suite.model_labels
    attacks = grid_attacks(entry.get("attacks"), models)
    n = typed(entry.get("n"), int, "transfer_grid.n")
    if n is not None and n < 1:
        raise UserError(f"must be at least 1, got {n}", where="transfer_grid.n")
    sources = model_list(entry.get("sources", models), models, "transfer_grid.sources")
    targets = model_list(entry.get("targets", models), models, "transfer_grid.targets")
    ensembles = ensemble_list(entry.get("surrogates", []), models)
    fuse = typed(entry.get("fuse", "logits"), str, "transfer_grid.fuse")
    if fuse not in SURROGATE_FUSIONS:
        raise UserError(
            f"must be one of {sorted(SURROGATE_FUSIONS)}, got {fuse!r}", where="transfer_grid.fuse"
        )
    effect = ensemble_effect(entry.get("ensemble_effect"), attacks, eps, models)
    singles = tuple((label,) for label in sources)
    return GridSettings(attacks, eps, n, singles + ensembles, targets, fuse, effect)


def grid_attacks(value: Any, models: list[str]) -> tuple[GridAttack, ...]:
    where = "transfer_grid.attacks"
    if not isinstance(value, list) or not value:
        raise UserError('must be a non-empty list of attacks, e.g. ["bim", "mifgsm"]', where=where)
    out, labels = [], set()
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, Mapping):
            raise UserError(f"must be an attack name or table, got {item!r}", where=at)
        name = typed(entry.get("name"), str, f"{at}.name", required=True)
        label = typed(entry.get("label", name), str, f"{at}.label")
        params = {k: v for k, v in entry.items() if k not in ("name", "label", "sources")}
        own = entry.get("sources")
        own = None if own is None else model_list(own, models, f"{at}.sources")
        for key in ("eps", "seed"):
            if key in params:
                raise UserError("is the grid's, for every attack", where=f"{at}.{key}")
        attack = construct(ATTACKS, name, params, at)  # bad values surface now, not mid-run
        if getattr(attack, "norm", "linf") != "linf":
            raise UserError(f"{name} is a {attack.norm} attack; the grid is Linf", where=at)
        if getattr(attack, "black_box", False):
            raise UserError(f"{name} queries its model: nothing to transfer from", where=at)
        if getattr(attack, "targeted", False):
            raise UserError("the grid tabulates untargeted transfer", where=f"{at}.targeted")
        if label in labels:
            raise UserError(f'label {label!r} is used twice; add label = "..."', where=at)
        labels.add(label)
        spec = {"name": name, "params": dict(sorted(params.items()))}
        out.append(GridAttack(label, spec, own))
    return tuple(out)


def model_list(value: Any, models: list[str], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise UserError("must be a non-empty list of model labels", where=where)
    for index, label in enumerate(value):
        if not isinstance(label, str) or label not in models:
            raise UserError(
                f"{label!r} is not a model of the suite ({models})", where=f"{where}[{index}]"
            )
    if len(set(value)) != len(value):
        raise UserError("lists a model twice", where=where)
    return tuple(value)


def ensemble_list(value: Any, models: list[str]) -> tuple[tuple[str, ...], ...]:
    where = "transfer_grid.surrogates"
    if not isinstance(value, list):
        raise UserError("must be a list of lists of model labels", where=where)
    out = []
    for index, members in enumerate(value):
        at = f"{where}[{index}]"
        found = model_list(members, models, at)
        if len(found) < 2:
            raise UserError("an ensemble needs at least 2 members", where=at)
        if source_label(found) in models:
            raise UserError(f"{source_label(found)!r} is also a model's label", where=at)
        out.append(found)
    if len(set(out)) != len(out):
        raise UserError("lists an ensemble twice", where=where)
    return tuple(out)


def ensemble_effect(
    value: Any, attacks: tuple[GridAttack, ...], eps: tuple[float, ...], models: list[str]
) -> EnsembleEffect | None:
    if value is None:
        return None
    where = "transfer_grid.ensemble_effect"
    if not isinstance(value, Mapping):
        raise UserError("must be a table: attack, eps, pool", where=where)
    unknown_keys(value, EFFECT_KEYS, where)
    attack = typed(value.get("attack"), str, f"{where}.attack", required=True)
    if attack not in [a.label for a in attacks]:
        raise UserError(f"{attack!r} is not one of the grid's attacks", where=f"{where}.attack")
    budget = parse_eps(value.get("eps"), f"{where}.eps")
    if budget not in eps:
        raise UserError("must be one of the grid's eps", where=f"{where}.eps")
    pool = model_list(value.get("pool"), models, f"{where}.pool")
    if len(pool) < 3:
        raise UserError(
            "needs at least 3 models (2 surrogates and a held-out one)", where=f"{where}.pool"
        )
    return EnsembleEffect(attack, budget, pool)
