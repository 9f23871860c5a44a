"""`rbg compare`: rows matched on suite, seed, model, attack, norm and eps; bookkeeping left
out; exit 1 on a difference beyond the tolerance, 0 otherwise, 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_publish import synthetic_board, write_run

from robustbench_gan.cli import main
from robustbench_gan.report.compare import compare
from robustbench_gan.report.publish import publish
from robustbench_gan.report.schema import LATER_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "results" / "quickstart"
MODELS = {"mlp": (0.95, {0.1: 0.5, 0.2: 0.1}), "lenet": (0.96, {0.1: 0.6, 0.2: 0.2})}


@pytest.fixture
def run_a(tmp_path):
    return write_run(tmp_path / "a", synthetic_board(MODELS))


def variant(tmp_path, change) -> Path:
    board = synthetic_board(MODELS)
    changed = change(board)  # edits in place, or returns a new board
    return write_run(tmp_path / "b", board if changed is None else changed)


def rbg_compare(capsys, *args: object) -> tuple[int, str]:
    code = main(["compare", *map(str, args)])
    return code, capsys.readouterr().out


def test_a_run_against_itself(run_a, capsys):
    code, out = rbg_compare(capsys, run_a, run_a / "leaderboard.csv")
    assert code == 0 and "no differences beyond tolerance 0" in out
    assert compare(QUICKSTART, QUICKSTART / "leaderboard.csv").differs is False


def test_one_changed_accuracy_is_named(run_a, tmp_path, capsys):
    def lower(board):
        pick = (board["target"] == "mlp") & (board["attack"] == "pgd") & (board["eps"] == 0.1)
        board.loc[pick, "robust_acc"] = 0.485

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, lower))
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert changed == [
        "changed: smoke seed 0: mlp, pgd, linf eps 0.1: robust_acc 0.5 -> 0.485 (-0.015)"
    ]
    assert "1 rows changed, 0 added, 0 removed" in out


def test_bookkeeping_columns_do_not_count(run_a, tmp_path, capsys):
    def bookkeeping(board):
        board["seconds"] *= 3
        board["device"] = "cuda:0"
        board["versions"] = "robustbench_gan 0.2.0"
        board["cell_id"] = "other"

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, bookkeeping))
    assert code == 0, out
    # a published file (its date, schema, links, intervals) against the run it came from
    publish(run_a, tmp_path / "results")
    code, out = rbg_compare(capsys, run_a, tmp_path / "results" / "digits-linf.csv")
    assert code == 0, out
    published = pd.read_csv(tmp_path / "results" / "digits-linf.csv")
    published["published"] = "1999-01-01"
    published["report"] = "elsewhere/report.md"
    published.to_csv(tmp_path / "again.csv", index=False)
    code, out = rbg_compare(
        capsys, tmp_path / "results" / "digits-linf.csv", tmp_path / "again.csv"
    )
    assert code == 0 and "no differences" in out


def test_tolerance(run_a, tmp_path, capsys):
    def nudge(board):
        board.loc[0, "robust_acc"] += 0.005
        board.loc[1, "clean_acc"] -= 0.004

    b = variant(tmp_path, nudge)
    assert rbg_compare(capsys, run_a, b, "--tolerance", "0.01")[0] == 0
    code, out = rbg_compare(capsys, run_a, b, "--tolerance", "0.0045")
    assert code == 1 and "robust_acc" in out and "clean_acc" not in out
    assert rbg_compare(capsys, run_a, b)[0] == 1
    assert compare(run_a, b, tolerance=0.006).changed == []
    assert main(["compare", str(run_a), str(b), "--tolerance", "-1"]) == 2


def test_added_removed_and_text_changes(run_a, tmp_path, capsys):
    def edit(board):
        extra = board.iloc[[0]].assign(suite="new")
        board = pd.concat([board.iloc[:-1], extra], ignore_index=True)
        board.loc[0, "flags"] = "zero_gradients"
        return board

    code, out = rbg_compare(capsys, run_a, variant(tmp_path, edit))
    assert code == 1
    assert "only in B (added): new seed 0: mlp, fgsm, linf eps 0.1" in out
    assert "only in A (removed): smoke seed 0: lenet, worst_case, linf eps 0.2" in out
    assert "flags '' -> 'zero_gradients'" in out
    comparison = compare(run_a, tmp_path / "b")
    assert len(comparison.added) == len(comparison.removed) == len(comparison.changed) == 1


def test_other_seed_is_another_row(run_a, tmp_path, capsys):
    b = write_run(tmp_path / "b", synthetic_board(MODELS, seed=1))
    comparison = compare(run_a, b)
    assert comparison.changed == [] and len(comparison.added) == len(comparison.removed) == 12


def test_an_old_leaderboard_without_the_later_columns(run_a, tmp_path, capsys):
    old = synthetic_board(MODELS).drop(columns=LATER_COLUMNS)
    b = write_run(tmp_path / "b", old)
    code, out = rbg_compare(capsys, run_a, b)
    assert code == 0 and "not compared, only in A: forward_passes, backward_passes" in out


def test_bad_input_is_one_line_and_exit_2(run_a, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing"), str(run_a)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no leaderboard.csv here" in err
    doubled = pd.concat([synthetic_board(MODELS)] * 2)
    b = write_run(tmp_path / "b", doubled)
    assert main(["compare", str(run_a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "repeat" in err
