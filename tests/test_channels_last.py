"""``rbg run --channels-last``: the models are evaluated in the channels-last memory layout
(CPU throughput). Other kernels run, so the numbers agree with the default layout's
statistically, per image, not bit for bit; the device column and run.json say which ran."""

from __future__ import annotations

import copy
import json

import pandas as pd
import torch

from robustbench_gan.registry import ATTACKS
from robustbench_gan.runner.device import describe_device
from robustbench_gan.runner.run import run_suite


def test_a_laid_out_model_computes_the_same_function(tiny_cnn, digits):
    """The weights change layout, not values: the logits agree to float rounding, and an
    attack's verdicts agree per image."""
    laid = copy.deepcopy(tiny_cnn).to(memory_format=torch.channels_last)
    conv = laid.body[2].weight  # 16 input channels (with 1, both layouts coincide)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x, y = digits.x_test[:100], digits.y_test[:100]
    with torch.no_grad():
        assert torch.allclose(laid(x), tiny_cnn(x), atol=1e-4)
    runs = [ATTACKS.create("pgd", steps=10)(m, x, y, [0.1]) for m in (tiny_cnn, laid)]
    agree = (runs[0].success == runs[1].success).float().mean()
    assert agree >= 0.97, agree


def test_the_run_says_which_layout_ran(tmp_path, tiny_suite):
    assert describe_device(torch.device("cpu"), True).endswith(", channels-last)")
    assert "channels-last" not in describe_device(torch.device("cpu"))
    boards = {}
    for layout in (False, True):
        out = tmp_path / f"out-{layout}"
        run_suite(
            tiny_suite, out=out, cache_dir=tmp_path / f"cache-{layout}", progress=False,
            channels_last=layout,
        )  # fmt: skip
        boards[layout] = pd.read_csv(out / "leaderboard.csv")
        assert json.loads((out / "run.json").read_text())["channels_last"] is layout
    assert boards[True]["device"].str.contains("channels-last").all()
    assert not boards[False]["device"].str.contains("channels-last").any()
    merged = boards[False].merge(boards[True], on=["target", "attack", "eps"])
    # 40 images: the same accuracy within two images per row
    assert ((merged["robust_acc_x"] - merged["robust_acc_y"]).abs() <= 2 / 40 + 1e-9).all()
