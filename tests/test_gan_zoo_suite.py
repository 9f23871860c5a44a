"""Every generator family through the runner: gan.csv, gan_curves.csv, FID while training,
the class-means baseline row, CycleGAN's domain-shift rows, report and publishing."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from robustbench_gan.publish.leaderboards import publish
from robustbench_gan.runner.run import run_suite

FAMILIES = {  # label -> suite entry (tiny widths; numbers are not meaningful)
    "gan": 'name = "gan"\ng_hidden = [32]\nd_hidden = [32]\npieces = 2',
    "dcgan": 'name = "dcgan"\nngf = 8\nndf = 8',
    "cdcgan": 'name = "cdcgan"\nngf = 8\nndf = 8',
    "acgan": 'name = "acgan"\nngf = 8\nndf = 8',
    "progan": 'name = "progan"\nngf = 8\nndf = 8\nphase_images = 64',
    "biggan": 'name = "biggan"\nngf = 8\nndf = 8\nshared_dim = 8\nnz = 16',
    "stackgan": 'name = "stackgan"\nngf = 8\nndf = 8\nc_dim = 8\nd_cond_dim = 8\nres_blocks = 1',
    "cyclegan": 'name = "cyclegan"\nngf = 8\nndf = 8\nn_res = 1\ndomain = "invert"',
}
STEPS = 8


def zoo_suite(tmp_path) -> str:
    gens = "\n".join(
        f"[[generators]]\n{entry}\ntrain = {{ steps = {STEPS}, batch_size = 16, fid_every = 4 }}\n"
        for entry in FAMILIES.values()
    )
    text = f"""
name = "zoo"
seed = 0
[dataset]
name = "digits"
max_train = 200
max_test = 40
[train]
epochs = 2
[eval]
eps = [0, 0.1]
[[targets]]
name = "small_cnn"
width = 8
[[targets]]
name = "mlp"
hidden = 16
{gens}
[gan_metrics]
judge = "small_cnn"
n = 40
[[attacks]]
name = "fgsm"
"""
    path = tmp_path / "zoo.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    base = tmp_path_factory.mktemp("zoo")
    out = base / "out"
    run_suite(zoo_suite(base), out=out, cache_dir=base / "cache", device="cpu", progress=False)
    return base, out


def test_gan_table_has_every_family_and_the_baseline(zoo):
    gan = pd.read_csv(zoo[1] / "gan.csv")
    assert list(gan["generator"]) == [*FAMILIES, "baseline"]
    trained = gan[gan["generator"] != "baseline"]
    assert (trained["steps"] == STEPS).all()
    for col in ("fid_small_cnn", "coverage", "precision", "recall", "density", "is_small_cnn"):
        assert gan[col].map(math.isfinite).all(), col
    assert gan["beats_baseline"].iloc[:-1].isin([True, False]).all()
    losses = dict(zip(gan["generator"], gan["loss"]))
    assert losses["progan"] == "wgan_gp" and losses["biggan"] == "hinge"
    assert losses["cyclegan"] == "lsgan"
    conditional = set(gan.loc[gan["conditional"], "generator"])
    assert {"cdcgan", "acgan", "biggan", "stackgan", "baseline"} <= conditional
    assert "cycle_error_final" in gan.columns and math.isfinite(
        gan.set_index("generator").loc["cyclegan", "cycle_error_final"]
    )


def test_training_curves_with_fid_every_n_steps(zoo):
    curves = pd.read_csv(zoo[1] / "gan_curves.csv")
    assert set(curves["generator"]) == set(FAMILIES)
    for _, part in curves.groupby("generator"):
        assert list(part["step"]) == list(range(1, STEPS + 1))
        measured = part.dropna(subset=["fid_small_cnn"])
        assert list(measured["step"]) == [4, 8]
    cycle = curves[curves["generator"] == "cyclegan"]["cycle_error"]
    assert cycle.notna().all()
    assert (zoo[1] / "plots" / "gan_curves.png").exists()
    for label in [*FAMILIES, "baseline"]:
        assert (zoo[1] / "plots" / f"gan_samples_{label}.png").exists(), label


def test_domain_shift_rows(zoo):
    out = zoo[1]
    shift = pd.read_csv(out / "domain_shift.csv")
    assert sorted(shift["target"]) == ["mlp", "small_cnn"]
    assert (shift["generator"] == "cyclegan").all() and (shift["domain"] == "invert").all()
    for col in ("clean_acc", "translated_acc", "transformed_acc"):
        assert shift[col].between(0, 1).all()
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False, na_values=[""])
    rows = board[board["norm"] == "domain"]
    assert len(rows) == 2 and rows["eps"].isna().all() and (rows["attack"] == "cyclegan").all()
    merged = rows.merge(shift, on=["target", "defense"])
    assert (merged["robust_acc"] == merged["translated_acc"]).all()
    worst = board[board["attack"] == "worst_case"]
    assert "cyclegan" not in " ".join(worst["attack_params"])
    report = (out / "report.md").read_text()
    assert "## Domain shift" in report and "Attack `cyclegan`" not in report
    written = publish(out, results=zoo[0] / "published")
    assert not any("domain" in p.name for p in written)


def test_rerun_is_cached_and_identical(zoo, tmp_path):
    base, out = zoo
    again = run_suite(
        zoo_suite(base), out=tmp_path / "out", cache_dir=base / "cache", progress=False
    )
    assert again.counts["run"] == 0
    for name in ("gan.csv", "gan_curves.csv", "domain_shift.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name
