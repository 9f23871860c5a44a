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
    for _, group in board.groupby(["target", "attack"]):
        assert (np.diff(group.sort_values("eps")["robust_acc"].to_numpy()) <= 0).all()
    at = board.set_index(["target", "attack", "eps"])["robust_acc"]
    for target in ("small_cnn", "resnet18", "cifar_net"):
        for eps in sorted(board["eps"].unique()):
            assert at[target, "pgd20", eps] <= at[target, "fgsm", eps] + 0.01
        assert at[target, "pgd20", board["eps"].max()] <= 0.01  # standard training: no robustness


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
