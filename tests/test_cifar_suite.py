"""suites/cifar10-linf.toml plans and runs a few steps on a fake CIFAR-10 folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from robustbench_gan.runner.run import prepare, run_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "cifar10-linf.toml"

#: the suite's shape with CPU-sized work: tiny data, one epoch, narrow nets, cheap attacks
SHRINK = {
    'name = "cifar10"\n': 'name = "cifar10"\nmax_train = 40\nmax_test = 10\n',
    "epochs = 30": "epochs = 1",
    'name = "resnet18"\n': 'name = "resnet18"\nwidth = 4\n',
    "width = 64": "width = 4",
    "steps = 7": "steps = 1",
    "steps = 20": "steps = 2",
    'label = "aa_like"\n': 'label = "aa_like"\nattacks = [{ name = "apgd_ce", steps = 2 }, { name = "square", n_queries = 5 }]\n',
}


def test_cifar_suite_plans_on_a_fake_folder(tmp_path, fake_cifar10):
    fake_cifar10(tmp_path, per_batch=10)
    suite, data, plan = prepare(SUITE, tmp_path)
    assert data.shape == (3, 32, 32)
    assert set(plan.models) == {
        "resnet18",
        "small_cnn",
        "resnet18+pgd_at",
        "resnet18+fgsm_rs",
        "small_cnn+pgd_at",
    }
    assert len(plan.by_kind("attack")) == 5 * 2


def test_cifar_suite_runs_a_few_steps(tmp_path, fake_cifar10):
    fake_cifar10(tmp_path / "data", per_batch=10)
    text = SUITE.read_text()
    for old, new in SHRINK.items():
        assert old in text, old
        text = text.replace(old, new)
    small = tmp_path / "cifar10-linf.toml"
    small.write_text(text)
    run_suite(
        small,
        out=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        data_dir=tmp_path / "data",
        device="cpu",
        progress=False,
    )
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert set(board["attack"]) == {"pgd20", "aa_like", "worst_case"}
    assert board["eps"].max() == 0.031372549
