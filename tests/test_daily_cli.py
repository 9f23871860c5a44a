"""The CLI's daily use: progress in logs, the run lock, exact fractions in the curves."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pandas as pd
import torch


def test_progress_into_a_log_is_a_line_per_cell(tmp_path, tiny_suite):
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_gan", "run", str(tiny_suite), "--out",
         str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rbg: [")]
    assert lines and all(line.endswith(" s)") for line in lines)
    assert any("fgsm on mlp" in line for line in lines)
    assert not (tmp_path / "out" / ".rbg.lock").exists()


def test_curve_accuracies_are_exact_fractions(tmp_path, tiny_suite):
    from robustbench_gan.runner.run import run_suite

    out = tmp_path / "out"
    run_suite(tiny_suite, out=out, cache_dir=tmp_path / "cache", progress=False)
    for name in ("curves_iterations.csv", "curves_eps.csv"):
        frame = pd.read_csv(out / name)
        n = int(pd.read_csv(out / "leaderboard.csv")["n_eval"].iloc[0])
        for value in frame["robust_acc"]:
            exact = Fraction(value).limit_denominator(n)
            assert float(exact) == value and exact.denominator <= n


def test_list_shows_every_accepted_name_and_verbose_describes(capsys):
    from robustbench_gan.cli import main
    from robustbench_gan.registry import ATTACKS

    assert main(["list", "attacks"]) == 0
    out = capsys.readouterr().out
    for name in ATTACKS.list(aliases=True):
        assert name in out  # autoattack_like too
    assert main(["list", "-v", "attacks", "pgd"]) == 0
    out = capsys.readouterr().out
    assert "  pgd\n" in out and "parameters: norm='linf', steps=" in out
    assert "Iterated gradient steps" in out
    assert main(["list", "-v", "attacks", "cascade"]) == 0
    assert "alias autoattack_like" in capsys.readouterr().out
    assert main(["list", "-v"]) == 0
    out = capsys.readouterr().out
    assert "art:<NAME>" in out and "evaluations:\n  attack\n" in out


def test_only_runs_the_matching_cells_and_their_upstream(tmp_path, tiny_suite, capsys):
    from robustbench_gan.cli import main

    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["run", str(tiny_suite), "--out", str(out), "--cache-dir", str(cache), "--no-progress"]
    assert main([*args, "--only", "pgd on small_cnn"]) == 0
    said = capsys.readouterr().out
    assert "2 cells run" in said and "partial: 2 of 12 cells" in said  # the model and the attack
    assert set(pd.read_csv(out / "leaderboard.csv")["attack"]) == {"pgd"}  # the part finished
    assert main([*args, "--only", "nothing like this"]) == 2
    assert "matches no cell" in capsys.readouterr().err
    assert main(args) == 0
    assert "2 from cache" in capsys.readouterr().out


def test_report_renders_again_from_the_store_alone(tmp_path, tiny_suite, capsys, monkeypatch):
    from robustbench_gan.cli import main

    out, cache = tmp_path / "out", tmp_path / "cache"
    run = ["run", str(tiny_suite), "--out", str(out), "--cache-dir", str(cache), "--threads", "2"]
    assert main(run) == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.csv")}
    header = [line for line in (out / "report.md").read_text().splitlines() if "device" in line]
    (out / "report.md").unlink()
    (out / "samples.csv").unlink()
    import robustbench_gan.runner.local as local

    def refuse(*a, **k):
        raise AssertionError("rbg report computed a cell")

    monkeypatch.setattr(local, "run_and_commit", refuse)
    monkeypatch.chdir(tmp_path)  # the manifest's paths are relative to the run folder
    threads = torch.get_num_threads()
    try:
        assert main(["report", "out"]) == 0  # in a process of 1 thread
    finally:
        torch.set_num_threads(threads)
    assert (out / "report.md").exists()
    assert "cpu (2 threads, " in header[0] and header[0] in (out / "report.md").read_text()
    assert {p.name: p.read_bytes() for p in out.glob("*.csv")}.keys() == before.keys()
    for name, data in before.items():
        if name != "leaderboard.csv":  # its seconds column is the run's, stored: the same
            assert (out / name).read_bytes() == data, name
    assert main(["report", str(out), "--cache-dir", str(tmp_path / "empty")]) == 2
    assert "rbg run" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
