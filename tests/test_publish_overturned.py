"""The published leaderboard marks a model whose standard number the adaptive attack
overturned (its run's escalation.csv), and refuses an escalation table that is not one."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from committed import committed

from robustbench_gan.errors import UserError
from robustbench_gan.publish.leaderboards import publish

HEADER = (
    "target,defense,attack,norm,eps,indicators_fired,remedies_run,robust_acc_standard,"
    "robust_acc,broken_by_remedies,overturned"
)


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(committed("quickstart"), folder)
    return folder


def test_an_overturned_model_is_marked(run, tmp_path):
    (run / "escalation.csv").write_text(
        f"{HEADER}\nlenet,none,pgd,linf,0.1,unstable_predictions,eot,0.5,0.4,36,True\n"
        "mlp,none,pgd,linf,0.1,,,0.3,0.3,0,False\n",
        encoding="utf-8",
    )
    publish(run, tmp_path / "results")
    board = pd.read_csv(tmp_path / "results" / "digits-linf.csv")
    marked = board[board["overturned_from"].notna()]
    assert marked[["target", "attack", "eps"]].values.tolist() == [["lenet", "pgd", 0.1]]
    assert marked["overturned_from"].tolist() == [0.5]
    markdown = (tmp_path / "results" / "digits-linf.md").read_text()
    assert "| lenet (overturned) |" in markdown and "mlp (overturned)" not in markdown
    html = (tmp_path / "results" / "digits-linf.html").read_text()
    assert 'class="overturned"' in html and "lenet (overturned)" in html


def test_a_run_without_escalation_publishes_no_mark(run, tmp_path):
    publish(run, tmp_path / "results")
    board = pd.read_csv(tmp_path / "results" / "digits-linf.csv")
    assert board["overturned_from"].isna().all()
    assert ") (overturned) |" not in (tmp_path / "results" / "digits-linf.md").read_text()
    assert "(overturned) |" not in (tmp_path / "results" / "digits-linf.md").read_text()


@pytest.mark.parametrize(
    "row, message",
    [
        ("lenet,none,pgd,linf,0.1,,,1.5,0.4,36,True", "robust_acc_standard"),
        ("lenet,none,pgd,linf,x,,,0.5,0.4,36,True", "row 1"),
        ("lenet,none,pgd,linf,0.1,,,0.5,0.4,36,maybe", "overturned"),
    ],
)
def test_a_broken_escalation_table_is_refused_in_one_line(run, tmp_path, row, message):
    (run / "escalation.csv").write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        publish(run, tmp_path / "results")
    (run / "escalation.csv").write_text("target,eps\nlenet,0.1\n", encoding="utf-8")
    with pytest.raises(UserError, match="missing"):
        publish(run, tmp_path / "results")
