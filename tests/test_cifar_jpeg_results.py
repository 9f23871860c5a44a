"""The committed CIFAR-10 (JPEG) run: its claims hold, and the model loaded from a weights
file is the file's, bit for bit (checked on the real images when $RBG_DATA_DIR has them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from committed import committed

from robustbench_gan.contract.schema import upgrade_board
from robustbench_gan.models.pretrained import state_sha256

ROOT = Path(__file__).resolve().parents[1]
RUN = committed("cifar10-jpeg")
WEIGHTS = ROOT / "suites" / "models" / "cifar_net.pt"


@pytest.fixture(scope="module")
def board():
    return upgrade_board(pd.read_csv(RUN / "leaderboard.csv", keep_default_na=False))


def test_the_run_has_its_report_and_cards(board):
    assert (RUN / "report.md").read_text().count("cifar_net") >= 3
    assert set(board["target"]) == {"small_cnn", "resnet18", "cifar_net"}
    assert (board["indicators"] == "").all()
    cards = {c["name"]: c for c in json.loads((RUN / "model_cards.json").read_text())}
    assert cards["cifar_net"]["eps"] == "8/255" and cards["cifar_net"]["architecture"] == (
        "models.cifar_net:Net"
    )
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert cards["cifar_net"]["weights_sha256"] == state_sha256(state)  # the weights, not the file
    assert set(board["dataset"]) == {"imagefolder-41dfa4af302f"}  # the test images' content
    assert "(leaderboard name `imagefolder-41dfa4af302f`)" in (RUN / "report.md").read_text()


def test_robustness_properties(board):
    for _, group in board.groupby(["target", "defense", "attack"]):
        assert (np.diff(group.sort_values("eps")["robust_acc"].to_numpy()) <= 0).all()
    at = board.set_index(["target", "defense", "attack", "eps"])["robust_acc"]
    largest = board["eps"].max()
    models = [("small_cnn", "none"), ("resnet18", "none"), ("cifar_net", "none"),
              ("small_cnn", "gaussian_augment")]  # fmt: skip
    for model in models:
        for eps in sorted(board["eps"].unique()):
            assert at[(*model, "pgd20", eps)] <= at[(*model, "fgsm", eps)] + 0.01
        # no adversarial training, no robustness (noise training leaves a few images)
        assert at[(*model, "pgd20", largest)] <= (0.02 if model[1] == "none" else 0.06)
        assert at[(*model, "autoattack", largest)] <= at[(*model, "pgd20", largest)]


def test_the_card_holds_corruption_and_certified_robustness():
    """The full card of every model: AutoAttack at 8/255, mCA with the worst corruption and
    certified accuracy at each radius, each with its interval (500 images; certified on 200
    with n = 1,000); noise training buys certified radius beyond the intervals."""
    cards = {c["name"]: c for c in json.loads((RUN / "model_cards.json").read_text())}
    assert set(cards) == {"small_cnn", "resnet18", "cifar_net", "small_cnn+gaussian_augment"}
    for card in cards.values():
        assert "autoattack" in card["attacks"] and card["n_examples"] == 500
        low, high = card["robust_acc_ci"]
        assert low <= card["robust_acc"] <= high
        found = card["corruptions"]
        assert (found["n_examples"], found["n_corruptions"]) == (500, 15)
        assert found["severities"] == [1, 2, 3, 4, 5]
        assert found["worst_corruption_acc"] <= found["mean_corruption_acc"] <= card["clean_acc"]
        smooth = card["certified"]
        assert (smooth["n_examples"], smooth["n"], smooth["sigma"]) == (200, 1000, 0.25)
        assert list(smooth["certified_acc_by_radius"]) == ["0", "0.25", "0.5", "0.75", "1"]
    noisy, plain = (cards[n]["certified"]["certified_acc_by_radius"]["0.25"]
                    for n in ("small_cnn+gaussian_augment", "small_cnn"))  # fmt: skip
    assert noisy["ci"][0] > plain["ci"][1]  # more certified at 0.25, beyond the intervals


def test_the_published_view_is_the_cards():
    """results/<dataset>-robustness.csv (rbg publish of this run) holds the cards' figures."""
    view = pd.read_csv(RUN.parent / "imagefolder-41dfa4af302f-robustness.csv")
    cards = {c["name"]: c for c in json.loads((RUN / "model_cards.json").read_text())}
    for (target, defense), rows in view.groupby(["target", "defense"]):
        card = cards[target if defense == "none" else f"{target}+{defense}"]
        figure = rows.groupby("measure")["value"].first()
        assert figure["clean"] == card["clean_acc"]
        assert figure["corruption_mean"] == card["corruptions"]["mean_corruption_acc"]
        by_radius = card["certified"]["certified_acc_by_radius"]
        certified = rows[rows["measure"] == "certified_acc"]["value"].tolist()
        assert certified == [by_radius[r]["certified_acc"] for r in by_radius]


def test_the_loaded_model_is_the_file(board):
    root = os.environ.get("RBG_DATA_DIR")
    if not root or not (Path(root) / "cifar10-jpeg").is_dir():
        pytest.skip("$RBG_DATA_DIR holds no cifar10-jpeg")
    import torch

    from robustbench_gan.models.pretrained import ModelSource, load_classifier
    from robustbench_gan.registry import DATASETS

    data = DATASETS.create("imagefolder", path="cifar10-jpeg", root=root, seed=0)
    source = ModelSource(
        "models.cifar_net:Net",
        weights="models/cifar_net.pt",
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    )
    model = load_classifier(source, base=ROOT / "suites")
    with torch.no_grad():
        correct = int((model(data.x_test[:500]).argmax(1) == data.y_test[:500]).sum())
    clean = board.loc[board["target"] == "cifar_net", "clean_acc"].iloc[0]
    assert correct / 500 == clean
