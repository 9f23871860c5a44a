"""The committed GAN results keep the claims the issues make (regenerate them with
``rbg run suites/digits-gans.toml`` and ``rbg run suites/digits-gan-threats.toml``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from claims import digits_gans_claims, failed
from committed import committed_results

from robustbench_gan.contract.schema import upgrade_board

RESULTS = committed_results()
ZOO = RESULTS / "digits-gans"
THREATS = RESULTS / "digits-gan-threats"
FAMILIES = {
    "gan", "dcgan", "cdcgan", "acgan", "progan", "biggan", "stackgan", "cyclegan", "stargan",
}  # fmt: skip


def read(folder: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(folder / name, keep_default_na=False, na_values=[""])
    return upgrade_board(frame) if name == "leaderboard.csv" else frame


def test_every_family_beats_the_class_means_baseline():
    """tests/claims.py: every family but DCGAN, ProGAN and StarGAN (whose wins did not hold
    on every seed: docs/reproducibility.md) beats the baseline, the conditional ones draw
    their classes, CycleGAN's cycle error falls, StarGAN's translations land in their
    domains."""
    gan = read(ZOO, "gan.csv").set_index("generator")
    assert FAMILIES <= set(gan["family"])
    assert failed(digits_gans_claims(ZOO)) == []
    # StarGAN's translations back from invert and rotate change the digits (see the suite's
    # notes): only its blur row is held to the baseline
    failing = (gan["family"] == "stargan") & (gan["domain"] != "blur")
    assert (gan.loc[failing, "beats_baseline"].isin([False, "False"])).all()


def test_cyclegan_cycle_error_falls_and_domain_shift_is_reported():
    curves = read(ZOO, "gan_curves.csv")
    cycle = curves.loc[curves["generator"] == "cyclegan", "cycle_error"].to_numpy()
    tenth = len(cycle) // 10
    assert cycle[-tenth:].mean() < 0.5 * cycle[:tenth].mean()
    shift = read(ZOO, "domain_shift.csv")
    assert len(shift) and shift["translated_acc"].between(0, 1).all()
    board = read(ZOO, "leaderboard.csv")
    assert (board["norm"] == "domain").sum() == len(shift)


def test_fid_was_tracked_while_training():
    curves = read(ZOO, "gan_curves.csv")
    tracked = curves.dropna(subset=["fid_small_cnn"])
    for label, part in tracked.groupby("generator"):
        assert len(part) >= 2, label
    gan = read(ZOO, "gan.csv")
    assert set(tracked["generator"]) == set(gan["generator"]) - {"baseline"}
    assert set(gan["family"]) - {"class_means"} == FAMILIES


def test_stargan_translates_into_three_domains_beside_one_cyclegan_each():
    """Issue 17: one StarGAN against one CycleGAN per domain; domain-shift rows for each of
    its domains, with label fidelity and domain accuracy in gan.csv, and a reconstruction
    error that falls during training."""
    gan = read(ZOO, "gan.csv")
    star = gan[gan["family"] == "stargan"].set_index("domain")
    assert len(star) >= 3
    cycle = gan[gan["family"] == "cyclegan"].set_index("domain")
    assert set(star.index) <= set(cycle.index)
    for col in ("label_fidelity", "domain_accuracy", "true_domain_accuracy", "g_params"):
        assert star[col].notna().all() and cycle.loc[star.index, col].notna().all(), col
    invertible = [d for d in star.index if d in ("invert", "rotate", "hflip")]
    assert star.loc[invertible, "label_fidelity_forward"].notna().all()
    assert (star["domain_accuracy"] >= 0.9).all()  # every translation lands in its domain
    shift = read(ZOO, "domain_shift.csv")
    rows = shift[shift["generator"] == "stargan"]
    assert set(rows["domain"]) == set(star.index)
    assert len(rows) == len(star) * shift["target"].nunique()
    curves = read(ZOO, "gan_curves.csv")
    error = curves.loc[curves["generator"] == "stargan", "cycle_error"].to_numpy()
    tenth = len(error) // 10
    assert error[-tenth:].mean() < 0.75 * error[:tenth].mean()  # the reconstruction improves


def test_stargan_translations_shift_like_the_true_transform():
    """Issue 17: each model's accuracy on StarGAN's translation into a domain is within 10
    points of its accuracy under the true transform -- for rotate and blur; into invert the
    translations permute the classes, as the suite's notes say (asserted, so that a fix
    shows up here and the notes get updated)."""
    shift = read(ZOO, "domain_shift.csv")
    star = shift[shift["generator"] == "stargan"]
    gap = (star["translated_acc"] - star["transformed_acc"]).abs()
    kept = star["domain"].isin(["rotate", "blur"])
    assert kept.sum() == 2 * star["target"].nunique() and (gap[kept] <= 0.10).all()
    assert (gap[~kept] > 0.10).all()
    gan = read(ZOO, "gan.csv").set_index(["family", "domain"])
    assert gan.loc[("stargan", "blur"), "label_fidelity"] >= 0.7  # the digit survives blur


def rows(board: pd.DataFrame, defense: str, attack: str) -> pd.DataFrame:
    part = board[(board["defense"] == defense) & (board["attack"] == attack) & (board["eps"] > 0)]
    return part.sort_values("eps").reset_index(drop=True)


def test_advgan_succeeds_and_is_fast():
    board = read(THREATS, "leaderboard.csv")
    plain = board[(board["target"] == "small_cnn") & (board["defense"] == "none")]
    advgan = plain[(plain["attack"] == "advgan") & (plain["eps"] == 0.2)].iloc[0]
    pgd = plain[(plain["attack"] == "pgd") & (plain["eps"] == 0.2)].iloc[0]
    assert advgan["attack_success_rate"] >= 0.90
    assert pgd["seconds"] >= 10 * advgan["seconds"]  # attack time, same images


def test_defense_gan_bpda_is_below_the_naive_evaluation():
    """Per image worst case over every attack: BPDA + EOT leaves less than the naive
    evaluation at every eps; PGD alone does at the larger budgets."""
    board = read(THREATS, "leaderboard.csv")
    naive = rows(board, "defense_gan_naive", "worst_case")
    bpda = rows(board, "defense_gan_bpda", "worst_case")
    assert (bpda["robust_acc"] < naive["robust_acc"]).all()
    naive, bpda = rows(board, "defense_gan_naive", "pgd"), rows(board, "defense_gan_bpda", "pgd")
    large = naive["eps"] >= 0.2
    assert (bpda.loc[large, "robust_acc"] < naive.loc[large, "robust_acc"]).all()
    assert naive["indicators"].str.contains("naive_evaluation").all()
    assert "## GAN purification (Defense-GAN)" in (THREATS / "report.md").read_text()


def test_latent_attack_and_gan_adversarial_training_are_reported():
    latent = read(THREATS, "latent.csv")
    assert len(latent) and latent["success_rate"].between(0, 1).all()
    assert (THREATS / "plots" / "latent_small_cnn.png").exists()
    board = read(THREATS, "leaderboard.csv")
    for defense in ("gan_adversarial_training", "fgsm_at", "pgd_at"):
        assert len(rows(board, defense, "pgd")), defense
