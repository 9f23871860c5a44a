"""Publishing leaderboards and comparing results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from robustbench_gan.cli import main
from robustbench_gan.report.publish import SCHEMA_VERSION, compare, publish

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "results" / "quickstart"


def test_publish_merges_without_duplicates_and_ranks(tmp_path):
    results = tmp_path / "results"
    written = publish(QUICKSTART, results)
    assert {p.name for p in written} == {"digits-linf.csv", "digits-linf.md", "digits-linf.html"}
    first = pd.read_csv(results / "digits-linf.csv")
    publish(QUICKSTART, results)  # the same run again replaces its own rows
    again = pd.read_csv(results / "digits-linf.csv")
    assert len(again) == len(first) == len(pd.read_csv(QUICKSTART / "leaderboard.csv"))
    assert (again["schema_version"] == SCHEMA_VERSION).all() and again["published"].notna().all()
    for col in ("versions", "device", "seed"):
        assert again[col].notna().all()

    other = tmp_path / "other"
    other.mkdir()
    board = pd.read_csv(QUICKSTART / "leaderboard.csv")
    board["suite"] = "another"
    board.to_csv(other / "leaderboard.csv", index=False)
    publish(other, results)
    merged = pd.read_csv(results / "digits-linf.csv")
    assert len(merged) == 2 * len(first)
    assert not merged.duplicated(["suite", "seed", "target", "defense", "attack", "eps"]).any()

    markdown = (results / "digits-linf.md").read_text()
    section = markdown.split("## eps 0.1\n")[1].split("## eps")[0]
    assert section.index("small_cnn [fgsm_at]") < section.index(
        "| small_cnn |"
    )  # more robust first
    assert "<table>" in (results / "digits-linf.html").read_text()


def test_flagged_rows_are_marked(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    board = pd.read_csv(QUICKSTART / "leaderboard.csv", keep_default_na=False)
    board.loc[board["target"] == "mlp", "flags"] = "zero_gradients"
    board.to_csv(run / "leaderboard.csv", index=False)
    publish(run, tmp_path / "results")
    assert "mlp (flagged)" in (tmp_path / "results" / "digits-linf.md").read_text()
    assert 'class="flagged"' in (tmp_path / "results" / "digits-linf.html").read_text()


def test_compare(tmp_path, capsys):
    assert compare(QUICKSTART, QUICKSTART / "leaderboard.csv").empty
    changed = pd.read_csv(QUICKSTART / "leaderboard.csv")
    changed.loc[0, "robust_acc"] -= 0.25
    changed = changed.drop(index=len(changed) - 1)
    changed.to_csv(tmp_path / "b.csv", index=False)
    diff = compare(QUICKSTART, tmp_path / "b.csv")
    assert len(diff) == 2
    assert diff["robust_delta"].dropna().tolist() == pytest.approx([-0.25])
    assert "only A" in diff["where"].tolist()
    assert main(["compare", str(QUICKSTART), str(tmp_path / "b.csv")]) == 0
    assert "2 rows differ" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nothing"), str(QUICKSTART)]) == 2


def test_publish_reads_the_model_cards(tmp_path):
    """A run's model_cards.json adds architecture, forward passes and weights to its rows."""
    import json

    run = tmp_path / "run"
    run.mkdir()
    board = pd.read_csv(QUICKSTART / "leaderboard.csv")
    board.to_csv(run / "leaderboard.csv", index=False)
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
    (run / "model_cards.json").write_text("{not json")
    with pytest.raises(Exception, match="not a list of model cards"):
        publish(run, tmp_path / "results")


def test_published_files_are_readable_by_others(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        for path in publish(QUICKSTART, tmp_path / "results"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(previous)
