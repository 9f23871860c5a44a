"""Publishing leaderboards: merging runs, model cards, links, old published files; and the
synthetic leaderboards the publish and compare tests share."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from committed import committed_results

from robustbench_gan.contract.schema import LATER_COLUMNS, LEADERBOARD_COLUMNS, upgrade_board
from robustbench_gan.errors import UserError
from robustbench_gan.publish.leaderboards import PUBLISHED_COLUMNS, SCHEMA_VERSION, publish

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = committed_results() / "quickstart"
TWO_ATTACKS = (("fgsm", "fgsm", {}), ("pgd", "pgd", {"steps": 10}))


def synthetic_board(
    models: dict[str, tuple[float, dict[float, float]]],
    *,
    suite: str = "smoke",
    seed: int = 0,
    n_eval: int = 200,
    attacks: tuple = TWO_ATTACKS,
    dataset: str = "digits",
    norm: str = "linf",
) -> pd.DataFrame:
    """A leaderboard as a run writes it: ``models`` maps "target" or "target [defense]" to
    (clean accuracy, {eps: worst-case robust accuracy}); ``attacks`` holds (label, name,
    params). Each attack's row is a little above the worst case, the last one equal to it;
    accuracies are whole images out of ``n_eval``."""
    rows = []
    for model, (clean, by_eps) in models.items():
        target, _, defense = model.partition(" [")
        defense = defense.rstrip("]") or "none"
        for eps, worst in by_eps.items():
            labels = []
            for index, (label, name, params) in enumerate(attacks):
                slack = 0.02 * (len(attacks) - 1 - index)
                rows.append(
                    row(suite, seed, dataset, target, defense, label, norm, eps, n_eval, clean,
                        min(clean, worst + slack), {"name": name, "params": params})
                )  # fmt: skip
                labels.append(label)
            if len(attacks) > 1:
                rows.append(
                    row(suite, seed, dataset, target, defense, "worst_case", norm, eps, n_eval,
                        clean, worst, {"attacks": labels})
                )  # fmt: skip
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


def row(suite, seed, dataset, target, defense, attack, norm, eps, n, clean, robust, params):
    whole = lambda x: round(x * n) / n  # noqa: E731
    return {
        "suite": suite, "dataset": dataset, "target": target, "defense": defense,
        "attack": attack, "attack_params": json.dumps(params, sort_keys=True), "norm": norm,
        "eps": eps, "n_eval": n, "clean_acc": whole(clean), "robust_acc": whole(robust),
        "attack_success_rate": 0.5, "mean_linf": eps, "mean_l2": 2 * eps, "seconds": 1.5 + seed,
        "forward_passes": 10.0, "backward_passes": 10.0, "device": "cpu (1 thread)",
        "seed": seed, "indicators": "", "versions": "robustbench_gan 0.1.0",
        "cell_id": f"{suite}{seed}{target}{attack}",
    }  # fmt: skip


def write_run(folder: Path, board: pd.DataFrame, report: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    board.to_csv(folder / "leaderboard.csv", index=False)
    if report:
        (folder / "report.md").write_text("# a run\n")
    return folder


def test_publish_merges_without_duplicates_and_ranks(tmp_path):
    results = tmp_path / "results"
    written = publish(QUICKSTART, results)
    names = {p.name for p in written}
    assert {"digits-linf.csv", "digits-linf.md", "digits-linf.html"} <= names
    assert len([n for n in names if n.endswith(".png")]) == 1  # one protocol, one picture
    first = pd.read_csv(results / "digits-linf.csv")
    publish(QUICKSTART, results)  # the same run again replaces its own rows
    again = pd.read_csv(results / "digits-linf.csv")
    assert len(again) == len(first) == len(pd.read_csv(QUICKSTART / "leaderboard.csv"))
    assert (again["schema_version"] == SCHEMA_VERSION).all() and again["published"].notna().all()
    assert list(again.columns) == PUBLISHED_COLUMNS
    for col in ("versions", "device", "seed", "protocol", "robust_ci_low", "robust_ci_high"):
        assert again[col].notna().all(), col
    assert (again["robust_ci_low"] <= again["robust_acc"] + 1e-12).all()
    assert (again["robust_acc"] <= again["robust_ci_high"] + 1e-12).all()

    board = pd.read_csv(QUICKSTART / "leaderboard.csv")
    board["suite"] = "another"
    publish(write_run(tmp_path / "other", board), results)
    merged = pd.read_csv(results / "digits-linf.csv")
    assert len(merged) == 2 * len(first)
    assert not merged.duplicated(["suite", "seed", "target", "defense", "attack", "eps"]).any()

    markdown = (results / "digits-linf.md").read_text()
    assert markdown.count("## Protocol") == 1  # the same attacks, images and dataset
    assert "Attacks: fgsm; pgd (steps=20)." in markdown
    section = markdown.split("### eps 0.1\n")[1].split("###")[0]
    assert section.index("small_cnn [fgsm_at]") < section.index(
        "| small_cnn |"
    )  # more robust first
    assert "| quickstart |" in section and "| another |" in section
    assert "<table>" in (results / "digits-linf.html").read_text()


def test_flagged_rows_are_marked(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    board = pd.read_csv(QUICKSTART / "leaderboard.csv", keep_default_na=False)
    board.loc[board["target"] == "mlp", "indicators"] = "unavailable_gradients"
    board.to_csv(run / "leaderboard.csv", index=False)
    publish(run, tmp_path / "results")
    markdown = (tmp_path / "results" / "digits-linf.md").read_text()
    assert "mlp (flagged)" in markdown and "| unavailable_gradients |" in markdown
    assert 'class="flagged' in (tmp_path / "results" / "digits-linf.html").read_text()


def test_publish_reads_the_model_cards(tmp_path):
    """A run's model_cards.json adds architecture, forward passes and weights to its rows,
    and the ranked tables show the architecture and a short hash, linked to the cards."""
    run = tmp_path / "results" / "run"
    board = pd.read_csv(QUICKSTART / "leaderboard.csv")
    write_run(run, board)
    cards = [
        {"name": "ensemble", "target": "mlp+small_cnn+lenet", "defense": "ensemble",
         "threat_model": "Linf", "architecture": "mlp+small_cnn+lenet",
         "number_forward_passes": 3, "weights_sha256": None},
        {"name": "mlp", "target": "mlp", "defense": "none", "threat_model": "Linf",
         "architecture": "mlp", "number_forward_passes": 1, "weights_sha256": "ab" * 32},
    ]  # fmt: skip
    (run / "model_cards.json").write_text(json.dumps(cards))
    publish(run, tmp_path / "results")
    merged = pd.read_csv(tmp_path / "results" / "digits-linf.csv")
    assert len(merged) == len(board)
    mlp = merged[(merged["target"] == "mlp") & (merged["defense"] == "none")]
    assert (mlp["weights_sha256"] == "ab" * 32).all() and (mlp["number_forward_passes"] == 1).all()
    assert (merged.loc[merged["defense"] == "ensemble", "number_forward_passes"] == 3).all()
    assert merged.loc[merged["target"] == "lenet", "architecture"].isna().all()  # no card
    assert (merged["model_card"] == "run/model_cards.json").all()
    markdown = (tmp_path / "results" / "digits-linf.md").read_text()
    assert f"[mlp {'ab' * 6}](run/model_cards.json)" in markdown
    (run / "model_cards.json").write_text("{not json")
    with pytest.raises(Exception, match="not a list of model cards"):
        publish(run, tmp_path / "results")


def test_report_links(tmp_path, monkeypatch):
    """A run inside the results folder is linked by its relative path; one outside by its
    absolute path, however it was given."""
    results = tmp_path / "results"
    inside = write_run(results / "runs" / "smoke", synthetic_board({"mlp": (0.9, {0.1: 0.5})}))
    publish(inside, results)
    published = pd.read_csv(results / "digits-linf.csv")
    assert (published["report"] == "runs/smoke/report.md").all()
    assert "[report](runs/smoke/report.md)" in (results / "digits-linf.md").read_text()
    assert '<a href="runs/smoke/report.md">report</a>' in (results / "digits-linf.html").read_text()

    monkeypatch.chdir(tmp_path)
    board = synthetic_board({"lenet": (0.9, {0.1: 0.6})}, seed=1)
    write_run(tmp_path / "elsewhere" / "smoke1", board)
    publish("elsewhere/smoke1", "results")  # relative to here, not to the results
    published = pd.read_csv(results / "digits-linf.csv")
    outside = (tmp_path / "elsewhere" / "smoke1" / "report.md").as_posix()
    assert set(published["report"]) == {"runs/smoke/report.md", outside}
    assert f"[report]({outside})" in (results / "digits-linf.md").read_text()
    board = synthetic_board({"mlp": (0.9, {0.2: 0.3})}, seed=2)
    absolute = write_run(tmp_path / "elsewhere" / "smoke2", board)
    publish(absolute, results)  # an absolute path is found from anywhere: linked
    given = (absolute / "report.md").as_posix()
    assert f"[report]({given})" in (results / "digits-linf.md").read_text()

    no_report = write_run(tmp_path / "bare", synthetic_board({"mlp": (0.9, {0.1: 0.5})}), False)
    publish(no_report, tmp_path / "r2")
    assert pd.read_csv(tmp_path / "r2" / "digits-linf.csv")["report"].isna().all()


def test_old_published_files_stay_readable_and_republishable(tmp_path):
    """The committed leaderboards (written before the forward passes, cards, links, protocols
    and intervals) read, and publishing into them fills the new columns for every row."""
    results = tmp_path / "results"
    results.mkdir()
    first_release = [c for c in LEADERBOARD_COLUMNS if c not in LATER_COLUMNS]
    for name in ("digits-linf.csv", "digits-l2.csv", "mnist-linf.csv"):
        committed = upgrade_board(
            pd.read_csv(committed_results() / name, keep_default_na=False, na_values=[""])
        )
        old = committed[first_release].assign(schema_version=1, published="2024-01-01")
        old.to_csv(results / name, index=False)  # as the first release wrote it
    old = pd.read_csv(results / "digits-linf.csv")
    publish(QUICKSTART, results)
    new = pd.read_csv(results / "digits-linf.csv", keep_default_na=False, na_values=[""])
    assert len(new) == len(old) and list(new.columns) == PUBLISHED_COLUMNS
    assert (new["schema_version"] == SCHEMA_VERSION).all()
    for column in ("protocol", "robust_ci_low", "robust_ci_high"):
        assert new[column].notna().all(), column
    kept = new[new["suite"] != "quickstart"]
    assert kept[LATER_COLUMNS].isna().all().all() and kept["report"].isna().all()
    given = (QUICKSTART / "report.md").as_posix()  # outside these results: the path as given
    assert (new.loc[new["suite"] == "quickstart", "report"] == given).all()
    markdown = (results / "digits-linf.md").read_text()
    assert markdown.count("## Protocol") == 2  # digits-attacks' catalog, quickstart's two attacks
    publish(committed_results() / "mnist-madry", results)
    mnist = pd.read_csv(results / "mnist-linf.csv")
    assert len(mnist) == len(pd.read_csv(committed_results() / "mnist-linf.csv"))
    assert mnist["protocol"].notna().all() and mnist["robust_ci_low"].notna().all()
    # one table per protocol of the three MNIST suites, as in the committed leaderboard
    protocols = (committed_results() / "mnist-linf.md").read_text().count("## Protocol")
    assert (results / "mnist-linf.md").read_text().count("## Protocol") == protocols >= 3


def test_published_files_are_readable_by_others(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        for path in publish(QUICKSTART, tmp_path / "results"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(previous)


def cards_for(board: pd.DataFrame) -> list[dict]:
    """A model card per model of a synthetic board."""
    models = board[["target", "defense"]].drop_duplicates().itertuples(index=False)
    return [
        {"target": t, "defense": d, "threat_model": "Linf", "architecture": t,
         "number_forward_passes": 1, "weights_sha256": "cd" * 32}
        for t, d in models
    ]  # fmt: skip


def write_run_with_cards(folder: Path, board: pd.DataFrame) -> Path:
    write_run(folder, board)
    (folder / "model_cards.json").write_text(json.dumps(cards_for(board)))
    return folder


def test_relative_then_absolute_run_into_one_folder(tmp_path, monkeypatch):
    """Issue 23: a run given by a relative path, then one given by an absolute path, published
    into a folder that already links its own runs' model cards (pandas then read the lines'
    missing links as NaN, which quote() refused, after the CSV was written)."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    inside = synthetic_board({"lenet": (0.97, {0.1: 0.7})}, suite="inside")
    publish(write_run_with_cards(results / "inside", inside), results)
    write_run_with_cards(tmp_path / "runs" / "a", synthetic_board({"mlp": (0.9, {0.1: 0.5})}))
    b = synthetic_board({"mlp": (0.9, {0.1: 0.4})}, seed=1)
    write_run_with_cards(tmp_path / "runs" / "b", b)
    publish("runs/a", "results")
    publish(tmp_path / "runs" / "b", "results")
    published = pd.read_csv(results / "digits-linf.csv")
    runs = (tmp_path / "runs").as_posix()
    assert set(published["report"]) == {
        "inside/report.md", f"{runs}/a/report.md", f"{runs}/b/report.md"
    }  # fmt: skip
    markdown = (results / "digits-linf.md").read_text()
    assert f"[seed 0]({runs}/a/report.md), [seed 1]({runs}/b/report.md)" in markdown
    assert f"[mlp cdcdcdcdcdcd]({runs}/a/model_cards.json)" in markdown
    assert "[lenet cdcdcdcdcdcd](inside/model_cards.json)" in markdown
    html = (results / "digits-linf.html").read_text()
    assert f'<a href="{runs}/b/report.md">seed 1</a>' in html


def test_a_folder_left_by_the_old_crash_publishes_again(tmp_path, monkeypatch):
    """The old crash left a CSV whose rows name a run by a path relative to where publish
    ran, found from nowhere now; those rows are shown with their paths, unlinked, and the
    folder takes new runs again."""
    results = tmp_path / "results"
    inside = synthetic_board({"lenet": (0.97, {0.1: 0.7})}, suite="inside")
    publish(write_run_with_cards(results / "inside", inside), results)
    poisoned = pd.read_csv(results / "digits-linf.csv", keep_default_na=False, na_values=[""])
    stranded = synthetic_board({"mlp": (0.9, {0.1: 0.5})}).assign(
        architecture="mlp", weights_sha256="ef" * 32,
        report="runs/a/report.md", model_card="runs/a/model_cards.json",
    )  # fmt: skip
    pd.concat([poisoned, stranded]).to_csv(results / "digits-linf.csv", index=False)
    (results / "digits-linf.md").unlink()
    monkeypatch.chdir(tmp_path)
    b = synthetic_board({"cnn": (0.9, {0.1: 0.45})}, suite="other")
    publish(write_run_with_cards(tmp_path / "runs" / "b", b), "results")
    markdown = (results / "digits-linf.md").read_text()
    assert "| mlp efefefefefef | report: runs/a/report.md |" in markdown  # kept, unlinked
    assert "[lenet cdcdcdcdcdcd](inside/model_cards.json)" in markdown
    assert f"[report]({(tmp_path / 'runs' / 'b' / 'report.md').as_posix()})" in markdown
    assert len(pd.read_csv(results / "digits-linf.csv")) == len(poisoned) + 2 * len(stranded)


def test_a_failed_render_writes_nothing(tmp_path, monkeypatch):
    """Every page is rendered before the first file is written: a publish that fails on the
    way leaves the CSV, pages and pictures as they were."""
    import robustbench_gan.publish.leaderboards as publishing

    results = tmp_path / "results"
    publish(write_run(tmp_path / "a", synthetic_board({"mlp": (0.9, {0.1: 0.5})})), results)
    before = {p.name: p.read_bytes() for p in results.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(publishing, "render_html", broken)
    other = synthetic_board({"cnn": (0.9, {0.1: 0.45})}, suite="other", n_eval=100)
    with pytest.raises(RuntimeError, match="rendering failed"):
        publish(write_run(tmp_path / "b", other), results)
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before


def test_a_partial_run_is_not_published(tmp_path):
    """A run folder that `rbg run --only` left partial ranks models on part of the suite's
    attacks: publish refuses it in one line and writes nothing."""
    run = write_run(tmp_path / "part", pd.read_csv(QUICKSTART / "leaderboard.csv"))
    partial = {"only": ["model=mlp"], "finished": 3, "cells": 89}
    (run / "run.json").write_text(json.dumps({"suite": "x.toml", "partial": partial}))
    with pytest.raises(UserError, match="partial run"):
        publish(run, tmp_path / "results")
    assert not (tmp_path / "results").exists()
