"""The rbg command: listing, validation and one-line user errors with no partial output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_gan.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = (ROOT / "suites" / "smoke.toml").read_text()


def test_list_all_and_filtered(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("datasets", "classifiers", "generators", "attacks", "defenses"):
        assert f"{kind}:" in out
    assert main(["list", "attacks", "pg*"]) == 0
    assert capsys.readouterr().out.strip() == "attacks: pgd"


def test_list_evaluation_kinds(capsys):
    assert main(["list", "evaluations"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("evaluations: ") and "attack" in out and "latent" in out
    assert main(["list"]) == 0
    assert "evaluations: " in capsys.readouterr().out


def test_list_unknown_kind(capsys):
    assert main(["list", "widgets"]) == 2
    assert "unknown kind 'widgets'" in capsys.readouterr().err


def test_validate_ok(capsys):
    assert main(["validate", str(ROOT / "suites" / "quickstart.toml")]) == 0
    assert "ok (3 targets" in capsys.readouterr().out


BAD_SUITES = {
    "malformed": (SMOKE + "\n[[attacks]\n", "invalid TOML"),
    "unknown_plugin": (
        SMOKE.replace('name = "pgd"', 'name = "pgdd"'),
        "attacks[1].name: unknown attack 'pgdd'",
    ),
    "negative_eps": (
        SMOKE.replace("eps = [0, 0.1, 0.3]", "eps = [0, -0.1, 0.3]"),
        "eval.eps[1]: must be >= 0",
    ),
    "missing_root": (
        SMOKE.replace('name = "digits"', 'name = "mnist"').replace(
            "max_train = 400\nmax_test = 60\n", ""
        ),
        "dataset: ",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_input_is_one_line_nonzero_and_leaves_no_csv(tmp_path, capsys, case, monkeypatch):
    text, message = BAD_SUITES[case]
    suite = tmp_path / f"{case}.toml"
    suite.write_text(text)
    out = tmp_path / "out"
    empty = tmp_path / "no_data_here"
    empty.mkdir()
    monkeypatch.delenv("RBG_DATA_DIR", raising=False)
    args = ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--data-dir", str(empty), "--no-progress"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rbg: error: {suite}")
    assert message in lines[0]
    assert not out.exists() or not list(out.glob("**/*.csv"))


def test_missing_root_says_what_was_looked_for(tmp_path, capsys, monkeypatch):
    text, _ = BAD_SUITES["missing_root"]
    suite = tmp_path / "mnist.toml"
    suite.write_text(text)
    monkeypatch.delenv("RBG_DATA_DIR", raising=False)
    assert (
        main(["run", str(suite), "--data-dir", str(tmp_path), "--cache-dir", str(tmp_path / "c")])
        == 2
    )
    err = capsys.readouterr().err
    assert "t10k-images-idx3-ubyte" in err
    assert str(tmp_path) in err
    assert "--data-dir" in err or "RBG_DATA_DIR" in err


def test_user_error_from_a_real_process_has_no_traceback(tmp_path):
    suite = tmp_path / "bad.toml"
    suite.write_text(BAD_SUITES["unknown_plugin"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "robustbench_gan", "validate", str(suite)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"rbg: error: {suite}: attacks[1].name: unknown attack 'pgdd'; did you mean 'pgd'"
    )


def test_cuda_requested_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert (
        main(
            ["run", str(ROOT / "suites" / "smoke.toml"), "--device", "cuda", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "CUDA is not available" in capsys.readouterr().err


def test_dry_run_lists_cells_and_what_is_cached(tmp_path, capsys):
    args = ["run", str(ROOT / "suites" / "smoke.toml"), "--cache-dir", str(tmp_path), "--dry-run"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all("to run" in line for line in lines)
    kinds = [line.split()[3] for line in lines]
    assert kinds.count("train_gan") == 2 and kinds.count("attack") == 10  # cdcgan, baseline
    gan_augment = next(line for line in lines if "train small_cnn+gan_augment" in line)
    assert gan_augment.endswith("<- train cdcgan")
    assert not (tmp_path / "artifacts").exists()  # nothing was computed


def test_a_module_attr_plugin_runs_in_a_suite(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_attacks.py").write_text(
        "import torch\n"
        "from robustbench_gan.attacks.base import Attack\n"
        "class Noise(Attack):\n"
        "    def perturb(self, model, x, y, eps, target):\n"
        "        return x + eps * (2 * torch.rand(x.shape, generator=self.rng) - 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "plugin.toml"
    suite.write_text(
        'name = "plugin"\n[dataset]\nname = "digits"\nmax_train = 200\nmax_test = 20\n'
        "[train]\nepochs = 1\n[eval]\neps = [0, 0.1]\n"
        '[[targets]]\nname = "mlp"\n[[attacks]]\nname = "my_attacks:Noise"\nlabel = "noise"\n'
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                str(suite),
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "c"),
                "--no-progress",
            ]
        )
        == 0
    )
    board = (out / "leaderboard.csv").read_text()
    assert ",noise," in board


def test_amp_changes_only_the_training_cells(tmp_path):
    from robustbench_gan.runner.run import prepare

    _, _, plain = prepare(ROOT / "suites" / "smoke.toml", None)
    _, _, amp = prepare(ROOT / "suites" / "smoke.toml", None, amp=True)
    trained = {c.id for c in plain.by_kind("train_classifier")}
    assert trained.isdisjoint(c.id for c in amp.by_kind("train_classifier"))
    gans = {c.id for c in plain.by_kind("train_gan")}
    assert gans.isdisjoint(c.id for c in amp.by_kind("train_gan"))


def test_dry_run_into_a_closed_pipe_is_quiet(tmp_path):
    """`rbg run --dry-run SUITE | head -1`: no BrokenPipeError traceback, exit 0."""
    command = (
        f"{sys.executable} -m robustbench_gan run --dry-run suites/quickstart.toml "
        f"--cache-dir {tmp_path} | head -1; exit ${{PIPESTATUS[0]}}"
    )
    proc = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr and len(proc.stdout.splitlines()) == 1


def test_compare_and_publish_refuse_a_csv_that_is_not_a_leaderboard(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["compare", str(bad), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a leaderboard (missing columns: suite, dataset" in err and err.count("\n") == 1
    run = tmp_path / "run"
    run.mkdir()
    (run / "leaderboard.csv").write_text("a,b\n1,2\n")
    assert main(["publish", str(run), "--results", str(tmp_path / "r")]) == 2


def test_dry_run_never_downloads(tmp_path, capsys, monkeypatch):
    import torchvision.datasets.utils

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run tried to download")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", refuse)
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", refuse)
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[dataset]\nname = "mnist"\ndownload = true\n[eval]\neps = [0]\n'
        '[[targets]]\nname = "mlp"\n[[attacks]]\nname = "fgsm"\n'
    )
    code = main(["run", "--dry-run", str(suite), "--data-dir", str(tmp_path / "empty")])
    assert code == 2 and "t10k" in capsys.readouterr().err


def test_validate_checks_the_data_when_given_a_folder(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[dataset]\nname = "mnist"\n[eval]\neps = [0]\n[[targets]]\nname = "mlp"\n'
        '[[attacks]]\nname = "fgsm"\n'
    )
    assert main(["validate", str(suite)]) == 0  # the file alone
    assert main(["validate", str(suite), "--data-dir", str(tmp_path / "empty")]) == 2
    assert "t10k" in capsys.readouterr().err
    digits = tmp_path / "d.toml"
    digits.write_text(suite.read_text().replace('"mnist"', '"digits"'))
    assert main(["validate", str(digits), "--data-dir", str(tmp_path)]) == 0
    assert "data: 1437 train and 360 test images" in capsys.readouterr().out


def test_only_writes_the_finished_part_marked_partial(tmp_path, tiny_suite, capsys):
    """--only model=X runs X's cells (no transfer to another model) and writes the tables and
    report of every finished cell, marked partial; `rbg report` renders them again; --only
    attack=pgd adds its cells; the whole suite then computes the rest and drops the mark."""
    import json

    import pandas as pd

    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["run", str(tiny_suite), "--out", str(out), "--cache-dir", str(cache), "--no-progress"]
    assert main([*args, "--only", "model=small_cnn"]) == 0  # train, audit, fgsm, pgd
    said = capsys.readouterr().out
    assert "4 cells run, 0 from cache" in said and "partial: 4 of 12 cells" in said
    board, transfer = pd.read_csv(out / "leaderboard.csv"), pd.read_csv(out / "transfer.csv")
    assert set(board["target"]) == {"small_cnn"} and (transfer["source"] == "small_cnn").all()
    assert (transfer["target"] == "small_cnn").all()  # the white-box diagonal alone
    note = (out / "report.md").read_text().splitlines()[2]  # under the title
    assert note.startswith("**Partial run (`--only model=small_cnn`): 4 of 12 cells.**")
    partial = {"only": ["model=small_cnn"], "finished": 4, "cells": 12}
    assert json.loads((out / "run.json").read_text())["partial"] == partial
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0  # the same part, from the store alone
    assert "Partial run (`--only model=small_cnn`)" in (out / "report.md").read_text()

    assert main([*args, "--only", "attack=pgd"]) == 0  # mlp, its pgd, the two transfers
    said = capsys.readouterr().out
    assert "4 cells run, 2 from cache" in said and "partial: 8 of 12 cells" in said
    board, transfer = pd.read_csv(out / "leaderboard.csv"), pd.read_csv(out / "transfer.csv")
    assert set(board.loc[board["target"] == "mlp", "attack"]) == {"pgd"}
    crossed = transfer[transfer["source"] != transfer["target"]]
    assert len(crossed) == 4 and set(crossed["attack"]) == {"pgd"}  # two pairs, two budgets

    assert main(args) == 0
    said = capsys.readouterr().out
    assert "4 cells run, 8 from cache" in said and "partial" not in said
    assert "Partial run" not in (out / "report.md").read_text()
    assert "partial" not in json.loads((out / "run.json").read_text())


def test_run_json_names_the_store_of_rbg_cache_dir(tmp_path, tiny_suite, capsys, monkeypatch):
    """A store given by $RBG_CACHE_DIR is recorded (relative to the run), so `rbg report`
    finds it without the variable."""
    import json
    import os

    monkeypatch.setenv("RBG_CACHE_DIR", str(tmp_path / "env-cache"))
    out = tmp_path / "out"
    args = ["run", str(tiny_suite), "--out", str(out), "--no-progress", "--only", "pgd on mlp"]
    assert main(args) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["cache_dir"] == os.path.relpath(tmp_path / "env-cache", out)
    monkeypatch.delenv("RBG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))  # not the user's store
    (out / "report.md").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert "report of 2 stored cells" in capsys.readouterr().out
    assert (out / "report.md").is_file()
