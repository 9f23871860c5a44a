"""suites/smoke.toml end to end: every stage, the output files, caching, determinism."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustbench_gan.contract.schema import LEADERBOARD_COLUMNS, TRANSFER_COLUMNS
from robustbench_gan.runner.run import prepare, run_suite
from robustbench_gan.runner.store import Store

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.toml"
TIMING = ["seconds"]  # wall-clock time differs between runs; everything else must not


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    summary = run_suite(
        SMOKE, out=base / "out", cache_dir=base / "cache", device="cpu", progress=False
    )
    return base, summary


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name)


def test_every_output_is_written(first_run):
    base, summary = first_run
    out = base / "out"
    for name in (
        "leaderboard.csv",
        "transfer.csv",
        "ensemble.csv",
        "gan.csv",
        "gan_curves.csv",
        "samples.csv",
        "attack_contributions.csv",
        "report.md",
        "run.json",
    ):
        assert (out / name).stat().st_size > 0, name
    for name in ("domain_shift.csv", "latent.csv", "references.csv"):
        assert not (out / name).exists(), name  # the suite has nothing for these
    assert "`domain_shift.csv`" not in (out / "report.md").read_text()
    assert "Tables of this run: `leaderboard.csv`" in (out / "report.md").read_text()
    for plot in (
        "robust_accuracy",
        "transfer_fgsm",
        "transfer_pgd",
        "gan_samples_cdcgan",
        "gan_samples_baseline",
        "gan_curves",
    ):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for plot in ("robust_accuracy", "transfer_fgsm", "gan_samples_cdcgan"):
        assert f"plots/{plot}.png" in report
    assert "denominator" in report  # the transfer definition is written down
    assert not list(out.glob(".partial-*"))
    assert summary.counts["cached"] == 0 and summary.counts["run"] > 0


def test_leaderboard_schema_and_types(first_run):
    board = read(first_run[0] / "out", "leaderboard.csv")
    assert list(board.columns) == LEADERBOARD_COLUMNS
    for col in (
        "eps",
        "n_eval",
        "clean_acc",
        "robust_acc",
        "attack_success_rate",
        "seconds",
        "seed",
    ):
        assert pd.api.types.is_numeric_dtype(board[col]), col
    models = {("mlp", "none"), ("small_cnn", "none"), ("small_cnn", "fgsm_at"),
              ("small_cnn", "gan_augment"), ("mlp+small_cnn", "ensemble")}  # fmt: skip
    assert set(zip(board["target"], board["defense"])) == models
    assert set(board["attack"]) == {"fgsm", "pgd", "worst_case"}
    assert len(board) == len(models) * 3 * 3  # models x (2 attacks + worst case) x 3 eps
    assert board["robust_acc"].between(0, 1).all()


def test_accuracy_properties(first_run):
    board = read(first_run[0] / "out", "leaderboard.csv")
    at_zero = board[board["eps"] == 0]
    np.testing.assert_allclose(at_zero["robust_acc"], at_zero["clean_acc"], atol=1e-6)
    for _, group in board.groupby(["target", "defense", "attack"]):
        accs = group.sort_values("eps")["robust_acc"].to_numpy()
        assert (np.diff(accs) <= 1e-9).all(), group
    pivot = board.pivot_table(
        index=["target", "defense", "eps"], columns="attack", values="robust_acc"
    )
    assert (pivot["worst_case"] <= pivot[["fgsm", "pgd"]].min(axis=1) + 1e-12).all()


def test_adversarial_examples_in_ball_and_range(first_run):
    base, _ = first_run
    suite, data, plan = prepare(SMOKE, None)
    store = Store(base / "cache")
    try:
        x = data.x_test[: suite.n_eval]
        for cell_id in plan.cells_of("attack").values():
            record = store.get(cell_id)
            adv = store.load_tensors(record.artifacts["adv"])["adv"]
            for eps, adv_eps in zip(record.spec["eps"], adv):
                assert adv_eps.min() >= 0 and adv_eps.max() <= 1
                assert (adv_eps - x).abs().max() <= eps + 1e-6
    finally:
        store.close()


def test_transfer_and_ensemble_tables(first_run):
    out = first_run[0] / "out"
    transfer = read(out, "transfer.csv")
    assert list(transfer.columns) == TRANSFER_COLUMNS
    models = 5
    assert len(transfer) == 2 * 3 * models * models  # attacks x eps x sources x targets
    board = read(out, "leaderboard.csv")
    diagonal = transfer[transfer["source"] == transfer["target"]]
    assert len(diagonal) == 2 * 3 * models
    ensemble = read(out, "ensemble.csv")
    assert len(ensemble) == 2 * 3
    np.testing.assert_allclose(
        ensemble["gain"], ensemble["ensemble_robust_acc"] - ensemble["best_member_robust_acc"]
    )
    for member in ("mlp", "small_cnn"):
        row = board[
            (board["target"] == member) & (board["defense"] == "none") & (board["attack"] == "pgd")
        ]
        expected = row.sort_values("eps")["robust_acc"].to_numpy()
        got = ensemble[ensemble["attack"] == "pgd"].sort_values("eps")[
            f"member_robust_acc:{member}"
        ]
        np.testing.assert_allclose(got.to_numpy(), expected)
        assert f"transfer_robust_acc_from:{member}" in ensemble.columns


def test_gan_table(first_run):
    out = first_run[0] / "out"
    gan = read(out, "gan.csv")
    assert list(gan["generator"]) == ["cdcgan", "baseline"]  # the class-means floor comes last
    assert list(gan["family"]) == ["cdcgan", "class_means"]
    for col in ("steps", "seconds", "d_loss_final", "g_loss_final", "fid_small_cnn",
                "is_small_cnn", "precision", "recall", "density", "coverage", "class_coverage",
                "class_kl", "label_fidelity", "nn_train_dist_fake", "nn_train_dist_test",
                "memorization_ratio"):  # fmt: skip
        assert pd.api.types.is_numeric_dtype(gan[col]), col
    assert list(gan["steps"]) == [30, 0]
    assert gan["loss"].iloc[0] == "nonsaturating" and gan["d_steps"].iloc[0] == 1
    baseline = gan.iloc[1]
    assert pd.isna(baseline["beats_baseline"])
    cdcgan = gan.iloc[0]
    beats = (cdcgan["fid_small_cnn"] < baseline["fid_small_cnn"]) and (
        cdcgan["coverage"] > baseline["coverage"]
    )
    assert bool(cdcgan["beats_baseline"]) == beats
    curves = read(out, "gan_curves.csv")
    assert list(curves["step"]) == list(range(1, 31))
    assert set(curves["generator"]) == {"cdcgan"}  # the baseline does not train


def test_second_run_uses_the_cache_and_writes_the_same_tables(first_run, tmp_path):
    base, _ = first_run
    again = run_suite(
        SMOKE, out=tmp_path / "out", cache_dir=base / "cache", device="cpu", progress=False
    )
    assert again.counts["run"] == 0 and again.counts["cached"] > 0
    for name in ("leaderboard.csv", "transfer.csv", "ensemble.csv", "gan.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (base / "out" / name).read_bytes(), name


def test_same_seed_same_numbers_from_scratch(first_run, tmp_path):
    base, _ = first_run
    run_suite(
        SMOKE, out=tmp_path / "out", cache_dir=tmp_path / "cache", device="cpu", progress=False
    )
    for name in ("leaderboard.csv", "transfer.csv", "ensemble.csv", "gan.csv"):
        fresh = read(tmp_path / "out", name)
        first = read(base / "out", name)
        drop = [c for c in TIMING if c in fresh.columns]
        pd.testing.assert_frame_equal(
            fresh.drop(columns=drop), first.drop(columns=drop), check_exact=True
        )


def test_corrupt_checkpoint_is_detected_and_recomputed(first_run, tmp_path, capsys):
    base, _ = first_run
    cache = tmp_path / "cache"
    shutil.copytree(base / "cache", cache)
    suite, data, plan = prepare(SMOKE, None)
    store = Store(cache)
    train_cell = plan.models["mlp"].train_cell
    record = store.get(train_cell)
    path = store.artifact_path(record.artifacts["state"])
    store.close()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))

    again = run_suite(SMOKE, out=tmp_path / "out", cache_dir=cache, device="cpu", progress=False)
    assert again.counts["recomputed"] == 1
    assert "corrupt" in capsys.readouterr().err
    board = read(tmp_path / "out", "leaderboard.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(board, read(base / "out", "leaderboard.csv").drop(columns=TIMING))


def test_references_are_set_beside_our_numbers(first_run, tmp_path):
    base, _ = first_run
    suite = tmp_path / "smoke.toml"
    suite.write_text(
        SMOKE.read_text().replace('name = "smoke"', 'name = "smoke"\nnotes = "Why we differ."')
        + '\n[[reference]]\npaper = "A 2015"\nmetric = "error"\nmodel = "small_cnn"\n'
        'attack = "fgsm"\neps = 0.1\nvalue = 0.5\n'
        '\n[[reference]]\npaper = "B 2018"\nmetric = "transfer_error"\nsource = "mlp"\n'
        'model = "small_cnn+fgsm_at"\nattack = "pgd"\neps = 0.3\nvalue = 0.25\n'
        '\n[[finding]]\nclaim = "Training on FGSM helps against transfer."\n'
        'better = "small_cnn+fgsm_at"\nworse = "small_cnn"\nsources = ["mlp", "ensemble"]\n'
        'attack = "pgd"\neps = 0.3\n'
    )
    run_suite(suite, out=tmp_path / "out", cache_dir=base / "cache", device="cpu", progress=False)
    refs = read(tmp_path / "out", "references.csv")
    board = read(base / "out", "leaderboard.csv")
    transfer = read(base / "out", "transfer.csv")
    fgsm = board[
        (board.target == "small_cnn")
        & (board.defense == "none")
        & (board.attack == "fgsm")
        & (board.eps == 0.1)
    ]
    moved = transfer[
        (transfer.source == "mlp")
        & (transfer.target == "small_cnn+fgsm_at")
        & (transfer.attack == "pgd")
        & (transfer.eps == 0.3)
    ]
    assert refs["ours"].tolist() == pytest.approx(
        [1 - fgsm.robust_acc.iloc[0], 1 - moved.target_robust_acc.iloc[0]]
    )
    assert refs["difference"].tolist() == pytest.approx(
        (refs["ours"] - refs["paper_value"]).tolist()
    )
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Beside the papers" in report and "Why we differ." in report
    part = transfer[
        (transfer.attack == "pgd")
        & (transfer.eps == 0.3)
        & transfer.source.isin(["mlp", "ensemble"])
    ]
    means = part.groupby("target")["target_robust_acc"].mean()
    verdict = (
        "holds here" if means["small_cnn+fgsm_at"] > means["small_cnn"] else "does not hold here"
    )
    assert "Finding: Training on FGSM helps against transfer." in report and verdict in report


def test_static_models_and_vote_ensembles_run_from_a_suite(tmp_path):
    suite = tmp_path / "defenses.toml"
    suite.write_text(
        'name = "defenses"\n[dataset]\nname = "digits"\nmax_train = 300\nmax_test = 40\n'
        "[train]\nepochs = 2\nlr = 0.005\n[eval]\neps = [0, 0.1]\n"
        '[[targets]]\nname = "mlp"\nhidden = 32\n[[targets]]\nname = "lenet"\n'
        '[[defenses]]\nname = "ensemble_at"\nbase = "lenet"\nstatic = ["mlp"]\neps = 0.1\n'
        '[[defenses]]\nname = "pgd_at"\nbase = "lenet"\neps = 0.1\nsteps = 3\n'
        '[[defenses]]\nname = "ensemble"\nlabel = "vote3"\nmode = "vote"\n'
        'members = ["mlp", "lenet", "lenet+ensemble_at"]\n'
        '[[attacks]]\nname = "fgsm"\n'
    )
    out = tmp_path / "out"
    run_suite(suite, out=out, cache_dir=tmp_path / "cache", device="cpu", progress=False)
    board = read(out, "leaderboard.csv")
    assert {
        ("lenet", "ensemble_at"),
        ("lenet", "pgd_at"),
        ("mlp+lenet+lenet+ensemble_at", "vote3"),
    } <= set(zip(board["target"], board["defense"]))
    ensemble = read(out, "ensemble.csv")
    assert set(ensemble["ensemble"]) == {"vote3"}
    assert "transfer_robust_acc_from:lenet+pgd_at" in ensemble.columns  # a source outside it
