"""The registry of evaluation kinds, typed records, and the layering rules of the core."""

from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from robustbench_gan.contract.context import build_defense
from robustbench_gan.contract.kinds import EVALUATIONS
from robustbench_gan.contract.records import Record
from robustbench_gan.registry import DEFENSES
from robustbench_gan.runner.run import run_suite

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "robustbench_gan"


def test_every_builtin_kind_is_registered_once():
    kinds = [k.kind for k in EVALUATIONS.ordered()]
    assert len(kinds) == len(set(kinds))
    assert {
        "train_classifier", "train_gan", "gan_metrics", "audit", "attack", "transfer",
        "ensemble", "domain_shift", "latent", "references", "purification",
    } <= set(kinds)  # fmt: skip


def test_kinds_that_plan_cells_run_them():
    for kind in EVALUATIONS.ordered():
        runs = type(kind).run is not type(kind).__mro__[-2].run
        plans = type(kind).plan is not type(kind).__mro__[-2].plan or len(kind.plan_steps()) > 1
        assert runs == plans, kind.kind


def test_a_new_kind_is_one_file(tmp_path, tiny_suite):
    """docs/example_kind.py adds a cell per model, a CSV and a report section."""
    spec = importlib.util.spec_from_file_location("example_kind", ROOT / "docs/example_kind.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # registers the kind
    try:
        out, cache = tmp_path / "out", tmp_path / "c"
        summary = run_suite(tiny_suite, out=out, cache_dir=cache, progress=False)
        flip = pd.read_csv(summary.out / "flip.csv")
        assert list(flip["model"]) == ["mlp", "small_cnn"]
        assert 0 <= flip["flipped_acc"].iloc[0] <= 1
        board = pd.read_csv(summary.out / "leaderboard.csv")
        assert flip["clean_acc"].iloc[0] == board["clean_acc"].iloc[0]
        assert "## Flipped images" in (summary.out / "report.md").read_text()
    finally:
        EVALUATIONS.remove("flip")
        del sys.modules[spec.name]


@dataclass(frozen=True)
class Inner(Record):
    a: int


@dataclass(frozen=True)
class Outer(Record):
    OPTIONAL = ("extra",)
    JSON_KEYS = {"receiver": "target"}

    receiver: str
    items: list[Inner]
    maybe: Inner | None = None
    extra: bool = False
    table: dict[str, int] = field(default_factory=dict)


def test_records_round_trip_with_fixed_keys():
    record = Outer("m", [Inner(1), Inner(2)], Inner(3), table={"k": 1})
    data = record.to_json()
    assert data == {
        "target": "m",
        "items": [{"a": 1}, {"a": 2}],
        "maybe": {"a": 3},
        "table": {"k": 1},
    }
    assert "extra" not in data  # optional keys stay out at their default: ids do not move
    assert Outer.from_json(data) == record
    assert Outer(**{**record.__dict__, "extra": True}).to_json()["extra"] is True
    assert Outer.from_json({"target": "m", "items": []}) == Outer("m", [])  # older results


def test_defenses_take_the_suite_seed():
    """Every seeded defense is built with the suite's seed; two seeds, two random streams."""
    seeded = [n for n in DEFENSES.list() if "seed" in DEFENSES.get(n).__init__.__code__.co_varnames]
    assert {"pgd_at", "fgsm_rs", "trades"} <= set(seeded)
    import torch

    from robustbench_gan.models.mlp import MLP

    torch.manual_seed(0)
    model = MLP(in_shape=(1, 8, 8), num_classes=10, mean=[0.5], std=[0.3], hidden=8)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    draws = {}
    for seed in (0, 1, 1):
        defense = build_defense({"name": "pgd_at", "params": {"eps": 0.3, "steps": 1}}, {}, seed)
        assert defense.seed == seed
        xb, _ = defense.batch(x, y, torch.Generator().manual_seed(0))
        draws.setdefault(seed, []).append(defense.attack.generate(model, xb, y, 0.3))
    assert torch.equal(draws[1][0], draws[1][1])
    assert not torch.equal(draws[0][0], draws[1][0])


def test_a_defense_entry_cannot_set_its_own_seed(tiny_suite):
    from robustbench_gan.errors import UserError
    from robustbench_gan.suite import load_suite

    path = tiny_suite
    path.write_text(path.read_text() + '[[defenses]]\nname = "pgd_at"\nbase = "mlp"\nseed = 3\n')
    with pytest.raises(UserError, match=r"defenses\[0\]\.seed: defenses take the suite's seed"):
        load_suite(path)


# -- layering ---------------------------------------------------------------------
def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    return found


CALLERS_OF_THE_CONTRACT = (
    "suite", "runner", "report", "evaluations", "data", "models", "gans", "attacks", "defenses",
)  # fmt: skip


@pytest.mark.parametrize(
    "folder, forbidden",
    [
        ("report", ("robustbench_gan.runner",)),  # the report reads Results, not store or plan
        # the contract sits below the pipeline, the kinds and the plugins
        ("contract", tuple(f"robustbench_gan.{p}" for p in CALLERS_OF_THE_CONTRACT)),
        ("models", ("robustbench_gan.defenses",)),  # the training loop knows no defense
        ("suite", ("robustbench_gan.runner", "robustbench_gan.report")),
        ("attacks", ("robustbench_gan.runner", "robustbench_gan.report")),
        ("defenses", ("robustbench_gan.runner", "robustbench_gan.report")),
        ("gans", ("robustbench_gan.runner", "robustbench_gan.report")),
    ],
)
def test_no_import_runs_back_up(folder, forbidden):
    for path in (PACKAGE / folder).glob("*.py"):
        bad = {m for m in imports_of(path) if m.startswith(forbidden)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


PLUGIN_NAMES = ("ensemble", "defense_gan", "cyclegan", "pgd", "fgsm", "advgan", "dcgan")


@pytest.mark.parametrize("folder", ["runner", "report", "suite"])
def test_no_plugin_is_named_in_the_core(folder):
    """The core names no plugin: string literals never hold a registered plugin's name."""
    for path in (PACKAGE / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in PLUGIN_NAMES, f"{path.name} names {node.value!r}"


def test_every_module_is_small_and_says_what_it_holds():
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) <= 420, f"{path.relative_to(ROOT)} has {len(lines)} lines"
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.relative_to(ROOT)} has no module docstring"
