"""What a report shows is what its files hold: every image link of every report.md resolves,
committed or freshly made with a relative --out, and every number in every report table equals
the CSV it comes from (tests/report_walk.py reads the tables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from committed import committed_results
from report_walk import problems, tables

from robustbench_gan.runner.run import run_suite

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(p.parent for p in committed_results().glob("*/report.md"))


@pytest.mark.parametrize("run", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_reports_show_their_files(run):
    assert problems(run) == []


@pytest.fixture
def relative_run(tiny_suite, tmp_path, monkeypatch):
    """The tiny suite run with a relative --out, as `rbg run` is typed."""
    monkeypatch.chdir(tmp_path)
    run_suite(tiny_suite, out="results/tiny", cache_dir="cache", progress=False)
    return tmp_path / "results" / "tiny"


def test_a_run_with_a_relative_out_links_its_plots(relative_run):
    text = (relative_run / "report.md").read_text()
    assert "](plots/robust_accuracy.png)" in text and ".partial-" not in text
    assert problems(relative_run) == []
    assert not list(relative_run.glob(".partial-*"))  # the staging folder is gone


def test_the_walk_catches_a_wrong_number_and_a_wrong_link(relative_run, tmp_path):
    """The checker is not vacuous: it reads the tables, and a changed digit or link fails."""
    found = tables(relative_run / "report.md")
    assert sum(len(t.rows) for t in found) >= 4
    copy = tmp_path / "copy"
    shutil.copytree(relative_run, copy)
    report = copy / "report.md"
    text = report.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| small_cnn |"))
    cells = row.split("|")
    cells[-2] = " 0.123 " if cells[-2].strip() != "0.123" else " 0.321 "
    report.write_text(text.replace(row, "|".join(cells), 1))
    assert any("small_cnn" in p for p in problems(copy))
    report.write_text(text.replace("](plots/", "](elsewhere/", 1))
    assert any("broken image link elsewhere/" in p for p in problems(copy))


@pytest.mark.skipif(
    not (committed_results() / "cifar10-transfer" / "report.md").is_file(),
    reason="no committed transfer run",
)
def test_the_walk_recomputes_the_transfer_summaries(tmp_path):
    """The transfer grid's mean table and the ensemble effect's pooled table are recomputed
    from transfer_grid.csv and ensemble_effect.csv: a changed number in either fails."""
    copy = tmp_path / "run"
    shutil.copytree(committed_results() / "cifar10-transfer", copy)
    report = copy / "report.md"
    text = report.read_text()
    transfer = next(line for line in text.splitlines() if line.startswith("| mifgsm |"))
    size = next(line for line in text.splitlines() if line.startswith("| 3 |"))
    for row, column in ((transfer, 2), (size, 4)):
        cells = row.split("|")
        cells[column] = f" {float(cells[column]) + 1:.1f} "
        report.write_text(text.replace(row, "|".join(cells), 1))
        assert len(problems(copy)) == 1, row


@pytest.mark.skipif(
    not (committed_results() / "cifar10-jpeg" / "certified.csv").is_file(),
    reason="no committed certified run",
)
def test_the_walk_reads_the_certified_table_by_radius(tmp_path):
    """The certified table's ``r R`` columns are certified.csv's accuracy at radius R: a
    changed number fails, at a radius or in a per-model column."""
    copy = tmp_path / "run"
    shutil.copytree(committed_results() / "cifar10-jpeg", copy)
    report = copy / "report.md"
    text = report.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| cifar_net | 0."))
    for column in (3, 5):  # smoothed clean, r 0.25
        cells = row.split("|")
        cells[column] = f" {float(cells[column]) + 0.1:.3f} "
        report.write_text(text.replace(row, "|".join(cells), 1))
        assert len(problems(copy)) == 1, cells
