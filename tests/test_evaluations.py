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


def test_kinds_are_ordered_by_what_they_declare():
    """Tables: a table's maker, then the kinds extending it, then those reading it whole.
    Plan: every step after the steps giving what it needs. No kind carries a number."""
    order = [k.kind for k in EVALUATIONS.table_order()]
    for kind in EVALUATIONS.ordered():
        for table in (*kind.extends, *kind.reads):
            makers = [k.kind for k in EVALUATIONS.ordered() if table in k.makes]
            assert all(order.index(m) < order.index(kind.kind) for m in makers), (kind, table)
        for table in kind.reads:
            writers = [k.kind for k in EVALUATIONS.ordered() if table in k.extends]
            before = [w for w in writers if w != kind.kind]
            assert all(order.index(w) < order.index(kind.kind) for w in before), (kind, table)
    assert order.index("domain_shift") < order.index("audit") < order.index("model_cards")
    steps = EVALUATIONS.plan_steps()
    for i, step in enumerate(steps):
        for later in steps[i + 1 :]:
            assert not set(step.needs) & set(later.gives) - set(step.gives), (step, later)
    for kind in EVALUATIONS.ordered():
        assert not {"order", "stage", "table_stage"} & set(vars(type(kind))), kind.kind


def test_a_kind_touching_an_undeclared_table_or_a_cycle_is_refused(monkeypatch):
    from robustbench_gan.contract.kind import Evaluation
    from robustbench_gan.contract.order import Step, ordered
    from robustbench_gan.contract.tables import Tables, UndeclaredTable

    tables = Tables()
    tables.set("leaderboard", pd.DataFrame({"a": [1]}))
    view = tables.scoped("sneaky", readable={"mine"}, writable={"mine"})
    with pytest.raises(UndeclaredTable, match="kind 'sneaky' reads table 'leaderboard'"):
        view["leaderboard"]
    with pytest.raises(UndeclaredTable, match="writes table 'leaderboard'"):
        view.set("leaderboard", pd.DataFrame())
    view.set("mine", pd.DataFrame({"b": [2]}))
    assert list(tables["mine"]["b"]) == [2]  # the view writes through

    class Sneaky(Evaluation):
        kind = "sneaky"
        makes = ("sneaky",)

        def tables(self, suite, results, tables):
            tables["leaderboard"]  # read without declaring it

    monkeypatch.setattr(EVALUATIONS, "table_order", lambda: [Sneaky()])
    from robustbench_gan.report.tables import build_tables

    with pytest.raises(UndeclaredTable, match="'sneaky' reads table 'leaderboard'"):
        build_tables(None, None)  # type: ignore[arg-type]
    a = Step("a", frozenset({"x"}), frozenset({"y"}), 1)
    b = Step("b", frozenset({"y"}), frozenset({"x"}), 2)
    with pytest.raises(ValueError, match="cycle among: a, b"):
        ordered([a, b])
    c = Step("c", frozenset(), frozenset({"y"}), 3)
    assert [s.name for s in ordered([b, c])] == ["c", "b"]  # x: given by none, not waited for


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


# -- size (the floors: tests/test_architecture.py; plugin names: test_core_names_no_plugin.py)
def test_every_module_is_small_and_says_what_it_holds():
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) <= 420, f"{path.relative_to(ROOT)} has {len(lines)} lines"
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.relative_to(ROOT)} has no module docstring"
