"""The plan's cache keys: what changes a cell id and what must not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from committed import committed_results

from robustbench_gan.contract.cells import cell_hash
from robustbench_gan.errors import UserError
from robustbench_gan.runner.plan import build_plan
from robustbench_gan.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
BASE = """
name = "keys"
seed = 0
[dataset]
name = "digits"
[train]
epochs = 1
[eval]
eps = [0, 0.1]
n = 20
[[targets]]
name = "mlp"
hidden = 8
[[targets]]
name = "small_cnn"
width = 4
[[defenses]]
name = "fgsm_at"
base = "small_cnn"
eps = 0.1
[[attacks]]
name = "fgsm"
[[attacks]]
name = "pgd"
steps = 3
"""


def plan_of(tmp_path: Path, text: str, *, data: str = "fingerprint", amp: bool = False):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return build_plan(load_suite(path), data, amp=amp)


def ids(plan) -> dict[tuple[str, str], str]:
    return {(c.kind, c.label): c.id for c in plan.cells}


def changed(before, after) -> set[tuple[str, str]]:
    a, b = ids(before), ids(after)
    assert a.keys() == b.keys()
    return {key for key in a if a[key] != b[key]}


def test_the_same_suite_gives_the_same_ids(tmp_path):
    assert ids(plan_of(tmp_path, BASE)) == ids(plan_of(tmp_path, BASE))


def test_the_hash_covers_kind_spec_deps_and_data():
    base = cell_hash("attack", {"a": 1}, ("x",), "d")
    assert base == cell_hash("attack", {"a": 1}, ("x",), "d")
    others = [
        cell_hash("audit", {"a": 1}, ("x",), "d"),
        cell_hash("attack", {"a": 2}, ("x",), "d"),
        cell_hash("attack", {"a": 1}, ("y",), "d"),
        cell_hash("attack", {"a": 1}, ("x",), "e"),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_what_must_not_change_an_id(tmp_path):
    before = plan_of(tmp_path, BASE)
    cosmetic = (
        BASE.replace('name = "keys"', 'name = "renamed"\ndescription = "d"\nnotes = "n"').replace(
            'name = "fgsm"\n', 'name = "fgsm"\nlabel = "fast"\n'
        )  # a label is a name only
    )
    a, b = ids(before), ids(plan_of(tmp_path, cosmetic))
    assert sorted(a.values()) == sorted(b.values())
    reordered = BASE.replace('name = "fgsm"\n[[attacks]]\nname = "pgd"\nsteps = 3', 'name = "pgd"\nsteps = 3\n[[attacks]]\nname = "fgsm"')  # fmt: skip
    assert sorted(ids(plan_of(tmp_path, reordered)).values()) == sorted(a.values())
    assert ids(plan_of(tmp_path, BASE, amp=False)) == a  # float32 cells keep their ids


def test_an_attack_parameter_changes_that_attack_and_its_transfers_only(tmp_path):
    before = plan_of(tmp_path, BASE)
    after = plan_of(tmp_path, BASE.replace("steps = 3", "steps = 4"))
    moved = changed(before, after)
    assert moved and all(kind in ("attack", "transfer") for kind, _ in moved)
    assert all("pgd" in label for _, label in moved)
    assert len([k for k in moved if k[0] == "attack"]) == 3  # pgd on each of the 3 models


def test_training_settings_change_the_model_and_everything_downstream(tmp_path):
    before = plan_of(tmp_path, BASE)
    after = plan_of(tmp_path, BASE.replace("hidden = 8", "hidden = 9"))
    moved = changed(before, after)
    assert ("train_classifier", "train mlp") in moved
    assert ("train_classifier", "train small_cnn") not in moved
    assert ("train_classifier", "train small_cnn+fgsm_at") not in moved
    assert ("attack", "fgsm on small_cnn") not in moved
    assert ("transfer", "fgsm small_cnn -> mlp") in moved  # mlp receives
    assert ("transfer", "fgsm mlp -> small_cnn") in moved  # mlp's examples are crafted anew
    assert ("audit", "audit mlp") in moved and ("audit", "audit small_cnn") not in moved


def test_seed_data_and_amp_change_what_they_touch(tmp_path):
    before = plan_of(tmp_path, BASE)
    assert changed(before, plan_of(tmp_path, BASE.replace("seed = 0", "seed = 1"))) == set(
        ids(before)
    )
    assert changed(before, plan_of(tmp_path, BASE, data="other")) == set(ids(before))
    amp = changed(before, plan_of(tmp_path, BASE, amp=True))
    assert {k for k in ids(before) if k[0] == "train_classifier"} <= amp  # trained differently
    assert amp == set(ids(before))  # ... and so everything evaluated on them


def test_a_defense_parameter_changes_its_model_only(tmp_path):
    before = plan_of(tmp_path, BASE)
    moved = changed(before, plan_of(tmp_path, BASE.replace("eps = 0.1\n[[attacks]]", "eps = 0.2\n[[attacks]]")))  # fmt: skip
    assert ("train_classifier", "train small_cnn+fgsm_at") in moved
    assert not any(k[0] == "train_classifier" and "fgsm_at" not in k[1] for k in moved)
    assert all("fgsm_at" in label for _, label in moved)


COMMITTED = [
    p.name for p in sorted(committed_results().iterdir()) if (p / "leaderboard.csv").exists()
]
#: attacks whose committed cells predate a stated change of what they compute (the plugin's
#: ``revision``), by suite: autoattack revisions 2 and 3 (FAB drops an image fooled within
#: the budget, from later targets as the reference does, then from the rest of its run: the
#: same verdict per image, fewer passes) came after digits-attacks' and mnist-madry's
#: committed runs; their robust accuracies stand, their AutoAttack pass counts are revision
#: 1's until they are run again
BEFORE_REVISION: dict[str, set[str]] = {
    "digits-attacks": {"autoattack", "autoattack_l2"},
    "mnist-madry": {"autoattack"},
}


def test_only_selects_by_label_or_by_column(tmp_path):
    """--only: a label pattern or NAME=GLOB on a column (the kind, or a part of its key as
    the kind names it), every pattern at once, with the cells they build on; a model's
    selection takes no transfer cell (its other side is another model)."""
    plan = plan_of(tmp_path, BASE)

    def labels(*patterns: str) -> set[str]:
        return {c.label for c in plan.only(*patterns).cells}

    small = {"train small_cnn", "audit small_cnn", "fgsm on small_cnn", "pgd on small_cnn"}
    assert labels("model=small_cnn") == small
    assert labels("pgd on small_cnn") == labels("model=small_cnn", "attack = pgd")
    assert labels("pgd on small_cnn") == {"train small_cnn", "pgd on small_cnn"}
    assert len(labels("model=small_cnn*")) == 8  # and its defended copy
    pgd = labels("attack=pgd")
    assert "pgd small_cnn+fgsm_at -> mlp" in pgd and not any("fgsm " in x for x in pgd)
    assert labels("source=mlp", "receiver=small_cnn") == {
        "train mlp", "train small_cnn", "fgsm on mlp", "pgd on mlp", "fgsm mlp -> small_cnn",
        "pgd mlp -> small_cnn",
    }  # fmt: skip
    audits = {"audit mlp", "audit small_cnn", "audit small_cnn+fgsm_at"}
    assert {x for x in labels("kind=audit") if not x.startswith("train ")} == audits
    part = plan.only("model=small_cnn")  # models and index cut to what is left
    assert list(part.models) == ["small_cnn"]
    assert set(part.index) == {"train_classifier", "audit", "attack"}
    columns = {"kind": "attack", "model": "small_cnn", "attack": "pgd"}
    pgd_cell = next(c for c in part.cells if c.label == "pgd on small_cnn")
    assert plan.columns()[pgd_cell.id] == columns
    with pytest.raises(UserError, match="columns: attack, .*model, receiver, source"):
        plan.only("colour=red")  # no such column: a label pattern, which matches nothing
    with pytest.raises(UserError, match="'model=mlp' --only 'attack=none' matches no cell"):
        plan.only("model=mlp", "attack=none")


@pytest.mark.parametrize("suite", COMMITTED)
def test_committed_runs_keep_their_cell_ids(suite):
    """The attack cells of the committed results are the ones this code plans (a change here
    needs a stated cache-format bump)."""
    from robustbench_gan.errors import UserError
    from robustbench_gan.runner.run import prepare

    data_dir = os.environ.get("RBG_DATA_DIR")
    manifest = committed_results() / suite / "run.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("data_dir"):
        # the data the run was made on (../shared/data/mnist-full: the official split), a
        # path relative to the run's folder in the checkout
        folder = ROOT / "results" / suite
        data_dir = str((folder / json.loads(manifest.read_text())["data_dir"]).resolve())
    try:
        _, _, plan = prepare(ROOT / "suites" / f"{suite}.toml", data_dir)
    except UserError as exc:  # MNIST suites need $RBG_DATA_DIR
        pytest.skip(str(exc))
    board = pd.read_csv(committed_results() / suite / "leaderboard.csv")
    single = board[(board["attack"] != "worst_case") & (board["norm"] != "domain")]
    stale = BEFORE_REVISION.get(suite, set())
    planned = {cell for (_, attack), cell in plan.cells_of("attack").items() if attack not in stale}
    assert set(single.loc[~single["attack"].isin(stale), "cell_id"]) == planned
    for attack in stale:  # its cells are planned anew, under ids the committed run lacks
        ids = {cell for (_, name), cell in plan.cells_of("attack").items() if name == attack}
        assert ids and not ids & set(single["cell_id"])
    domain = set(board.loc[board["norm"] == "domain", "cell_id"])
    assert domain == set(plan.cells_of("domain_shift").values())
