"""The common-corruption kind (``[corruptions]``, evaluations/corruption.py): accuracy per
corruption and severity with intervals, mCA, the worst corruption, and Hendrycks & Dietterich's
(ICLR 2019) mCE and relative mCE against a baseline model; MNIST-C's set on grey digits."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from robustbench_gan.corruptions import MNIST_C
from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.common import bits
from robustbench_gan.evaluations.corruption import (
    CORRUPTION_COLUMNS,
    SUMMARY_COLUMNS,
    Corrupted,
    CorruptionOutcome,
    corruption_table,
    summary_table,
)
from robustbench_gan.runner.plan import build_plan
from robustbench_gan.runner.run import run_suite
from robustbench_gan.suite.load import load_suite

BASE = """
name = "corrupt"
seed = 3
[dataset]
name = "digits"
max_train = 400
max_test = 60
[train]
epochs = 8
lr = 0.01
[eval]
eps = [0]
[[targets]]
name = "mlp"
hidden = 32
[[targets]]
name = "small_cnn"
width = 8
[[attacks]]
name = "fgsm"
"""
SUITE = BASE + "[corruptions]\nseverities = [1, 3, 5]\n"
SEVERITIES = [1, 3, 5]
MODELS = ["mlp", "small_cnn"]


def run_into(folder, text: str = SUITE):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corrupt.toml").write_text(text)
    out = folder / "out"
    run_suite(
        folder / "corrupt.toml", out=out, cache_dir=folder / "cache", device="cpu", progress=False
    )
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_into(tmp_path_factory.mktemp("corrupt"))


def read(out, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name, keep_default_na=False, na_values=[""])


def test_the_tables_hold_every_model_corruption_and_severity(run):
    frame = read(run, "corruption.csv")
    assert list(frame.columns) == CORRUPTION_COLUMNS
    # no names given: MNIST-C's 15 corruptions, the set of the 1-channel digits
    assert list(dict.fromkeys(frame["corruption"])) == list(MNIST_C)
    assert len(frame) == len(MODELS) * len(MNIST_C) * len(SEVERITIES)
    assert list(dict.fromkeys(frame["model"])) == MODELS
    assert set(frame["severity"]) == set(SEVERITIES) and (frame["n"] == 60).all()
    counts = frame["accuracy"] * frame["n"]
    assert np.allclose(counts, counts.round())  # shares of the n images
    summary = read(run, "corruption_summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["model"]) == MODELS


def test_intervals_contain_their_estimates(run):
    frame = read(run, "corruption.csv")
    assert (frame["ci_low"] <= frame["accuracy"]).all()
    assert (frame["accuracy"] <= frame["ci_high"]).all()
    summary = read(run, "corruption_summary.csv")
    assert (summary["ci_low"] <= summary["mean_corruption_acc"]).all()
    assert (summary["mean_corruption_acc"] <= summary["ci_high"]).all()


def test_the_summary_follows_from_the_table(run):
    frame = read(run, "corruption.csv")
    summary = read(run, "corruption_summary.csv").set_index("model")
    board = pd.read_csv(run / "leaderboard.csv")
    for model in MODELS:
        part = frame[frame["model"] == model]
        assert summary.loc[model, "mean_corruption_acc"] == pytest.approx(part["accuracy"].mean())
        means = part.groupby("corruption", sort=False)["accuracy"].mean()
        assert summary.loc[model, "worst_corruption"] == means.idxmin()
        assert summary.loc[model, "worst_corruption_acc"] == pytest.approx(means.min())
        clean = board[(board["target"] == model) & (board["attack"] == "fgsm")]
        assert summary.loc[model, "clean_acc"] == pytest.approx(clean["clean_acc"].iloc[0])


def test_accuracy_does_not_rise_with_severity_on_a_standard_model(run):
    frame = read(run, "corruption.csv")
    mlp = frame[frame["model"] == "mlp"].groupby("severity")["accuracy"].mean()
    clean = read(run, "corruption_summary.csv").set_index("model").loc["mlp", "clean_acc"]
    assert clean > 0.8  # a standard model, not a coin
    assert mlp[5] <= mlp[1] <= clean


def test_the_baseline_against_itself_is_one(run):
    summary = read(run, "corruption_summary.csv").set_index("model")
    assert (summary["baseline"] == "mlp").all()  # the first target by default
    assert summary.loc["mlp", "relative_mce"] == 1.0
    assert summary.loc["mlp", "mce"] == 1.0
    assert math.isfinite(summary.loc["small_cnn", "relative_mce"])


def test_the_plot_and_the_section_are_written(run):
    assert (run / "plots" / "corruption.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "## Common corruptions" in report and "plots/corruption.png" in report


def test_the_same_seed_gives_the_same_tables(run, tmp_path):
    again = run_into(tmp_path / "again")
    for name in ("corruption.csv", "corruption_summary.csv"):
        pd.testing.assert_frame_equal(read(run, name), read(again, name))


def outcome(clean: list[bool], by_corruption: dict[str, list[list[bool]]]) -> CorruptionOutcome:
    """A cell's outcome from per-image correctness (per corruption, one list per severity)."""
    n = len(clean)
    corrupted = tuple(
        Corrupted(name, tuple(sum(r) / n for r in rows), tuple(bits(np.array(r)) for r in rows))
        for name, rows in by_corruption.items()
    )
    return CorruptionOutcome(n, (1, 2), bits(np.array(clean)), corrupted, 0.0, "cpu")


def test_relative_mce_is_hendrycks_and_dietterichs_and_nan_where_undefined():
    """Relative CE_c = sum_s (E_s,c - E_clean) / the baseline's; averaged over corruptions.
    A baseline that loses nothing under a corruption leaves the relative mCE NaN, named."""
    T, F = True, False
    base = outcome([T, T, T, T], {"a": [[T, T, T, F], [T, F, F, F]], "b": [[T, T, T, T]] * 2})
    model = outcome([T, T, T, F], {"a": [[T, T, F, F], [F, F, F, F]], "b": [[T, F, T, F]] * 2})
    outcomes = {"base": (base, "id0"), "model": (model, "id1")}
    summary = summary_table(corruption_table(outcomes), outcomes, "base").set_index("model")
    # a: the model's errors 0.5 and 1.0 (clean error 0.25), the base's 0.25 and 0.75 (clean 0)
    # b: the model's errors 0.5 and 0.5, the base's none: b's ratios are undefined
    assert math.isnan(summary.loc["model", "relative_mce"])
    assert math.isnan(summary.loc["model", "mce"])  # the base makes no error under b
    assert summary.loc["model", "relative_mce_undefined"] == "b"
    only_a = {k: (replace(o, corruptions=o.corruptions[:1]), i) for k, (o, i) in outcomes.items()}
    summary = summary_table(corruption_table(only_a), only_a, "base").set_index("model")
    assert summary.loc["model", "relative_mce"] == pytest.approx((0.25 + 0.75) / (0.25 + 0.75))
    assert summary.loc["model", "mce"] == pytest.approx((0.5 + 1.0) / (0.25 + 0.75))
    assert summary.loc["base", "relative_mce"] == 1.0
    assert summary.loc["model", "worst_corruption"] == "a"
    assert summary.loc["model", "mean_corruption_acc"] == pytest.approx(0.25)


def test_the_baseline_enters_no_cell_id(tmp_path):
    """Changing the mCE's baseline recomputes nothing: only the tables change."""

    def ids(text: str) -> dict:
        path = tmp_path / "plan.toml"
        path.write_text(text)
        return build_plan(load_suite(path), "fingerprint").cells_of("corruptions")

    first = ids(SUITE)
    assert list(first) == MODELS
    assert ids(SUITE + 'baseline = "small_cnn"\n') == first
    assert ids(SUITE.replace("[1, 3, 5]", "[1, 5]")) != first


@pytest.mark.parametrize(
    "bad, where, says",
    [
        ("n = 0", "corruptions.n", "at least 1"),
        ("severities = [0, 1]", "corruptions.severities[0]", "1..5"),
        ("severities = [1, 1]", "corruptions.severities", "twice"),
        ('severities = ["3"]', "corruptions.severities[0]", "whole number"),
        ("severities = []", "corruptions.severities", "non-empty"),
        ('names = ["mnist_c_fogg"]', "corruptions.names[0]", "did you mean"),
        ('names = ["os:system"]', "corruptions.names[0]", "registered"),
        ('baseline = "resnet"', "corruptions.baseline", "not a model"),
        ("level = 3", "corruptions.level", "unknown key"),
    ],
)
def test_bad_tables_are_refused_up_front(tmp_path, bad, where, says):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + f"[corruptions]\n{bad}\n")
    with pytest.raises(UserError) as error:
        load_suite(path)
    assert where in str(error.value) and says in str(error.value)
