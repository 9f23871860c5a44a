"""The certified-robustness kind (``[certify]``, evaluations/certified.py): Cohen, Rosenfeld &
Kolter's (ICML 2019) CERTIFY per chosen model, certified accuracy by L2 radius with Wilson
intervals, bounded by the smoothed classifier's clean accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.certified import CERTIFIED_COLUMNS, largest_radius
from robustbench_gan.runner.plan import build_plan
from robustbench_gan.runner.run import run_suite
from robustbench_gan.suite.load import load_suite

BASE = """
name = "smooth"
seed = 1
[dataset]
name = "digits"
max_train = 400
max_test = 40
[train]
epochs = 8
lr = 0.01
[eval]
eps = [0]
[[targets]]
name = "mlp"
hidden = 32
[[defenses]]
name = "gaussian_augment"
base = "mlp"
sigma = 0.25
[[attacks]]
name = "fgsm"
"""
RADII = [0.0, 0.1, 0.2, 0.3, 0.5]
SUITE = BASE + (
    f"[certify]\nsigma = 0.25\nn0 = 20\nn = 100\nimages = 20\nbatch = 64\nradii = {RADII}\n"
)
MODELS = ["mlp", "mlp+gaussian_augment"]


def run_into(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smooth.toml").write_text(SUITE)
    out = folder / "out"
    run_suite(
        folder / "smooth.toml", out=out, cache_dir=folder / "cache", device="cpu", progress=False
    )
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_into(tmp_path_factory.mktemp("smooth"))


def test_the_table_holds_every_model_and_radius(run):
    frame = pd.read_csv(run / "certified.csv")
    assert list(frame.columns) == CERTIFIED_COLUMNS
    assert list(dict.fromkeys(frame["model"])) == MODELS  # every model by default
    assert len(frame) == len(MODELS) * len(RADII)
    assert list(frame["radius"]) == RADII * len(MODELS)
    assert (frame["n_eval"] == 20).all()
    assert (frame["sigma"] == 0.25).all() and (frame["n0"] == 20).all()
    assert (frame["n"] == 100).all() and (frame["alpha"] == 0.001).all()
    counts = frame["certified_acc"] * frame["n_eval"]
    assert np.allclose(counts, counts.round())  # shares of the images certified


def test_intervals_contain_their_estimates(run):
    frame = pd.read_csv(run / "certified.csv")
    assert (frame["ci_low"] <= frame["certified_acc"]).all()
    assert (frame["certified_acc"] <= frame["ci_high"]).all()


def test_certified_accuracy_falls_with_the_radius_below_the_smoothed_clean_accuracy(run):
    frame = pd.read_csv(run / "certified.csv")
    for _, part in frame.groupby("model"):
        accuracy = part.sort_values("radius")["certified_acc"].to_numpy()
        assert (np.diff(accuracy) <= 0).all()
        assert (accuracy <= part["smoothed_clean_acc"].to_numpy()).all()
    assert frame["certified_acc"].iloc[0] > 0.5  # a trained model certifies something
    # with n = 100 copies no radius above sigma * Phi^-1(alpha^(1/n)) ~ 0.375 is certified
    assert largest_radius(load_suite(run.parent / "smooth.toml").section("certify")) < 0.5
    assert (frame.loc[frame["radius"] == 0.5, "certified_acc"] == 0).all()


def test_the_plot_and_the_section_are_written(run):
    assert (run / "plots" / "certified.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "## Certified robustness" in report and "plots/certified.png" in report


def test_the_same_seed_gives_the_same_table(run, tmp_path):
    again = run_into(tmp_path / "again")
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "certified.csv"), pd.read_csv(again / "certified.csv")
    )


def test_models_choose_the_cells_and_the_radii_enter_no_cell_id(tmp_path):
    def ids(text: str) -> dict:
        path = tmp_path / "plan.toml"
        path.write_text(text)
        return build_plan(load_suite(path), "fingerprint").cells_of("certified")

    every = ids(SUITE)
    assert list(every) == MODELS
    chosen = ids(SUITE + 'models = ["mlp+gaussian_augment"]\n')
    assert chosen == {"mlp+gaussian_augment": every["mlp+gaussian_augment"]}
    assert ids(SUITE.replace(f"radii = {RADII}", "radii = [0.0, 1.0]")) == every
    assert ids(SUITE.replace("sigma = 0.25\nn0", "sigma = 0.5\nn0")) != every
    assert not ids(BASE)  # no [certify], no cells


@pytest.mark.parametrize(
    "bad, where, says",
    [
        ("sigma = 0", "certify.sigma", "> 0"),
        ('sigma = "0.25"', "certify.sigma", "must be float"),
        ("alpha = 1.5", "certify.alpha", "between 0 and 1"),
        ("n0 = 0", "certify.n0", "at least 1"),
        ("n = 2.5", "certify.n", "must be int"),
        ("images = 0", "certify.images", "at least 1"),
        ("batch = 0", "certify.batch", "at least 1"),
        ("radii = [-0.1]", "certify.radii[0]", ">= 0"),
        ("radii = [0.1, 0.1]", "certify.radii", "distinct"),
        ('models = ["resnet"]', "certify.models[0]", "not a model"),
        ('models = ["mlp", "mlp"]', "certify.models", "twice"),
        ("samples = 10", "certify.samples", "unknown key"),
    ],
)
def test_bad_tables_are_refused_up_front(tmp_path, bad, where, says):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + f"[certify]\n{bad}\n")
    with pytest.raises(UserError) as error:
        load_suite(path)
    assert where in str(error.value) and says in str(error.value)
