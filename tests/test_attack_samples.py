"""Per-image attribution (samples.csv, attack_contributions.csv), passes per row and the
flags for attacks that misbehave, through real runs of a tiny suite."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from robustbench_gan.runner.run import run_suite

MISBEHAVING = '''
import torch
from robustbench_gan.attacks.base import Attack

class NaNs(Attack):
    """Returns NaN for every other image (a broken plugin)."""
    def perturb(self, model, x, y, eps, target_class):
        out = x.clone()
        out[::2] = float("nan")
        return out

class Loud(Attack):
    """Ignores its budget: a step of 0.5 in the gradient's sign."""
    def perturb(self, model, x, y, eps, target_class):
        return x + 0.5 * self.gradient(model, x, y, target_class).sign()
'''


@pytest.fixture
def run(tmp_path, tiny_suite):
    """Run a version of the tiny suite with ``extra`` appended; returns the output folder."""

    def go(extra: str = "", name: str = "out"):
        tiny_suite.write_text(tiny_suite.read_text() + extra)
        out = tmp_path / name
        run_suite(tiny_suite, out=out, cache_dir=tmp_path / "cache", progress=False)
        return out

    return go


def test_each_image_is_credited_to_the_first_attack_that_broke_it(run):
    out = run()
    samples = pd.read_csv(out / "samples.csv", keep_default_na=False, na_values=[""])
    board = pd.read_csv(out / "leaderboard.csv")
    n = int(board["n_eval"].iloc[0])
    assert len(samples) == 2 * 1 * n  # two models, one eps > 0
    for (target, eps), group in samples.groupby(["target", "eps"]):
        assert list(group["image"]) == list(range(n))
        worst = board[
            (board.target == target) & (board.eps == eps) & (board.attack == "worst_case")
        ]
        assert group["robust"].mean() == pytest.approx(float(worst["robust_acc"].iloc[0]))
        fgsm = board[(board.target == target) & (board.eps == eps) & (board.attack == "fgsm")]
        # FGSM runs first: it is credited with every image it broke
        assert (group["broken_by"] == "fgsm").mean() == pytest.approx(
            float(fgsm["clean_acc"].iloc[0] - fgsm["robust_acc"].iloc[0])
        )
        broken = group[group["broken_by"].notna()]
        assert (broken["adv_pred"] != broken["label"]).all()
        assert (broken["linf"] <= eps + 1e-6).all() and (broken["l2"] > 0).all()
        assert group.loc[group["broken_by"].isna(), "adv_pred"].isna().all()
        clean_wrong = group["clean_pred"] != group["label"]
        assert group.loc[clean_wrong, "broken_by"].isna().all()
        assert not group.loc[clean_wrong, "robust"].any()
    contributions = pd.read_csv(out / "attack_contributions.csv")
    for (target, eps), group in contributions.groupby(["target", "eps"]):
        assert list(group["attack"]) == ["fgsm", "pgd"]
        part = samples[(samples.target == target) & (samples.eps == eps)]
        assert list(group["broke"]) == [
            int((part["broken_by"] == a).sum()) for a in ("fgsm", "pgd")
        ]
        assert group["robust_acc_after"].iloc[-1] == pytest.approx(part["robust"].mean())
    report = (out / "report.md").read_text()
    assert "## Which attack broke which image" in report


def test_a_composite_credits_its_parts(run):
    out = run('[[attacks]]\nname = "cascade"\nlabel = "aa"\nattacks = ["fgsm", "pgd"]\n')
    samples = pd.read_csv(out / "samples.csv", keep_default_na=False, na_values=[""])
    contributions = pd.read_csv(out / "attack_contributions.csv")
    assert list(contributions["attack"].unique()) == ["fgsm", "pgd", "aa: fgsm", "aa: pgd"]
    # fgsm, pgd ran first and broke everything the composite's parts can
    assert set(samples["broken_by"].dropna()) <= {"fgsm", "pgd", "aa: fgsm", "aa: pgd"}


def test_every_row_carries_its_passes(run):
    board = pd.read_csv(run() / "leaderboard.csv")
    attacked = board[board.eps > 0]
    fgsm = attacked[attacked.attack == "fgsm"]
    assert (fgsm["forward_passes"] == 1).all() and (fgsm["backward_passes"] == 1).all()
    pgd = attacked[attacked.attack == "pgd"]
    assert ((pgd["backward_passes"] > 0) & (pgd["backward_passes"] <= 2)).all()
    worst = attacked[attacked.attack == "worst_case"]
    for _, row in worst.iterrows():
        same = attacked[
            (attacked.target == row.target)
            & (attacked.eps == row.eps)
            & (attacked.attack != "worst_case")
        ]
        assert row["backward_passes"] == pytest.approx(same["backward_passes"].sum())
    at_zero = board[board.eps == 0]
    assert (at_zero["forward_passes"] == 0).all()


def test_misbehaving_attacks_are_flagged_and_scored_consistently(run, tmp_path):
    (tmp_path / "misbehave.py").write_text(MISBEHAVING)
    extra = (
        '[[attacks]]\nname = "misbehave:NaNs"\nlabel = "nans"\n'
        '[[attacks]]\nname = "misbehave:Loud"\nlabel = "loud"\n'
    )
    board = pd.read_csv(run(extra) / "leaderboard.csv", keep_default_na=False)
    nans = board[(board.attack == "nans") & (board.eps > 0)]
    assert nans["indicators"].str.contains("invalid_output").all()
    # NaN images count as not adversarial: nothing changes, robust = clean, success 0
    assert (nans["robust_acc"] == nans["clean_acc"]).all()
    assert (nans["attack_success_rate"] == 0).all()
    loud = board[(board.attack == "loud") & (board.eps > 0)]
    assert loud["indicators"].str.contains("projected_output").all()
    assert not board[board.attack.isin(["fgsm", "pgd"])]["indicators"].str.contains("_output").any()
    for _, row in board[board.eps > 0].iterrows():  # success rate agrees with accuracy
        fooled = row["clean_acc"] - row["robust_acc"]
        assert row["attack_success_rate"] * row["clean_acc"] == pytest.approx(fooled, abs=1e-9)


def test_a_result_from_an_older_version_is_recomputed(run, tmp_path, capsys, monkeypatch):
    from robustbench_gan.contract.kinds import EVALUATIONS

    first = pd.read_csv(run() / "leaderboard.csv")
    with sqlite3.connect(tmp_path / "cache" / "store.sqlite") as db:
        stored = json.loads(
            db.execute("SELECT result FROM cells WHERE kind = 'attack'").fetchone()[0]
        )
    kind = EVALUATIONS.get("attack")
    older = {
        **stored,
        "per_eps": [{k: v for k, v in e.items() if k != "linf"} for e in stored["per_eps"]],
    }
    assert kind.current(stored) and not kind.current(older)
    with sqlite3.connect(tmp_path / "cache" / "store.sqlite") as db:
        first_results = {r for (r,) in db.execute("SELECT result FROM cells WHERE kind = 'attack'")}

    def older_if_first(self, result):  # the first run's results read as older: recomputed
        return json.dumps(result, sort_keys=True) not in first_results

    monkeypatch.setattr(type(kind), "current", older_if_first)
    capsys.readouterr()
    again = pd.read_csv(run(name="again") / "leaderboard.csv")
    assert "was written by an older version; recomputing" in capsys.readouterr().err
    keep = ["target", "defense", "attack", "eps", "robust_acc", "forward_passes"]
    pd.testing.assert_frame_equal(first[keep], again[keep])


def test_the_samples_table_matches_the_stored_adversarial_examples(run):
    out = run()
    samples = pd.read_csv(out / "samples.csv", keep_default_na=False, na_values=[""])
    assert np.isfinite(samples["linf"].dropna()).all()
    assert samples["linf"].dropna().max() <= 0.1 + 1e-6
