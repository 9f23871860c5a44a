"""GANs as attackers and purifiers through the runner: AdvGAN rows and their cost, the
latent-space attack table and pictures, Defense-GAN's three evaluations, and AdvGAN-based
adversarial training, on a slice of digits."""

from __future__ import annotations

import pandas as pd
import pytest

from robustbench_gan.contract.schema import upgrade_board
from robustbench_gan.runner.run import run_suite

SUITE = """
name = "threats"
seed = 0
[dataset]
name = "digits"
max_train = 300
max_test = 40
[train]
epochs = 3
lr = 0.005
[eval]
eps = [0, 0.2]
[[targets]]
name = "small_cnn"
width = 8
[[targets]]
name = "mlp"
hidden = 32
[[generators]]
name = "dcgan"
ngf = 8
ndf = 8
nz = 16
train = { steps = 40, batch_size = 32 }
[[generators]]
name = "cdcgan"
ngf = 8
ndf = 8
nz = 16
train = { steps = 40, batch_size = 32 }
[gan_metrics]
judge = "small_cnn"
n = 40
[[defenses]]
name = "gan_adversarial_training"
base = "small_cnn"
eps = 0.2
width = 4
[[defenses]]
name = "defense_gan"
label = "dgan_bpda"
members = ["small_cnn"]
generator = "dcgan"
steps = 5
restarts = 2
eot = 2
[[defenses]]
name = "defense_gan"
label = "dgan_naive"
members = ["small_cnn"]
generator = "dcgan"
steps = 5
restarts = 2
gradient = "naive"
[[attacks]]
name = "fgsm"
[[attacks]]
name = "advgan"
steps = 20
width = 4
[latent]
generator = "cdcgan"
auxiliary = "mlp"
n = 20
steps = 10
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("threats")
    (base / "threats.toml").write_text(SUITE)
    out = base / "out"
    summary = run_suite(
        base / "threats.toml", out=out, cache_dir=base / "cache", device="cpu", progress=False
    )
    return out, summary


def test_advgan_rows_and_cost(run):
    out, _ = run
    board = upgrade_board(
        pd.read_csv(out / "leaderboard.csv", keep_default_na=False, na_values=[""])
    )
    rows = board[(board["attack"] == "advgan") & (board["eps"] == 0.2)]
    assert len(rows) == 5  # every model, defended ones included
    assert rows["attack_success_rate"].between(0, 1).all()
    report = (out / "report.md").read_text()
    assert "## Attack cost" in report and "train_seconds" in report


def test_defense_gan_evaluations_are_flagged_and_explained(run):
    out, _ = run
    board = upgrade_board(
        pd.read_csv(out / "leaderboard.csv", keep_default_na=False, na_values=[""])
    )
    naive = board[board["defense"] == "dgan_naive"]
    bpda = board[board["defense"] == "dgan_bpda"]
    assert naive["indicators"].str.contains("naive_evaluation").all()
    assert not bpda["indicators"].str.contains("naive_evaluation").any()
    report = (out / "report.md").read_text()
    assert "## GAN purification (Defense-GAN)" in report and "BPDA" in report
    assert "naive_evaluation" in report  # the flag legend


def test_latent_attack_table_and_pictures(run):
    out, _ = run
    latent = pd.read_csv(out / "latent.csv")
    assert "mlp" not in set(latent["target"])  # the auxiliary judges, it is not attacked
    assert len(latent) == 4 and (latent["n"] == 20).all()
    for col in ("target_acc_start", "target_acc_found", "auxiliary_agrees", "success_rate"):
        assert latent[col].between(0, 1).all()
    assert (latent["success_rate"] <= latent["auxiliary_agrees"]).all()
    pictures = sorted(p.name for p in (out / "plots").glob("latent_*.png"))
    assert len(pictures) == 4
    assert "## Latent-space attack" in (out / "report.md").read_text()


def test_gan_adversarial_training_is_a_model_of_the_leaderboard(run):
    out, _ = run
    board = pd.read_csv(out / "leaderboard.csv")
    assert "gan_adversarial_training" in set(board["defense"])


def test_latent_search_keeps_the_auxiliary_label(digits):
    """Direct call: every success is a sample the auxiliary still labels as its source class
    and the target does not; an unconditional generator is refused."""
    import torch
    from conftest import train_tiny_cnn

    from robustbench_gan.attacks.latent import latent_attack
    from robustbench_gan.gans import train_gan
    from robustbench_gan.registry import GENERATORS

    x, y = digits.x_train, digits.y_train
    target, auxiliary = train_tiny_cnn(x, y, epochs=2), train_tiny_cnn(x, y, seed=1)
    torch.manual_seed(0)
    gan = GENERATORS.create("cdcgan", in_shape=(1, 8, 8), nz=8, ngf=8, ndf=8)
    train_gan(gan, x, y, steps=100, batch_size=64, progress=False)
    result = latent_attack(gan, target, auxiliary, n=40, steps=30, seed=0)
    assert torch.equal(result.labels, torch.arange(40) % 10)
    ok = result.success
    assert ok.any()
    assert (result.auxiliary_found[ok] == result.labels[ok]).all()
    assert (result.target_found[ok] != result.labels[ok]).all()
    again = latent_attack(gan, target, auxiliary, n=40, steps=30, seed=0)
    assert torch.equal(result.found, again.found)  # seeded
    with pytest.raises(ValueError, match="conditional"):
        latent_attack(GENERATORS.create("dcgan", in_shape=(1, 8, 8)), target, auxiliary)
