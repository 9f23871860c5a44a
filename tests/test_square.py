"""Square Attack's options, and its AutoAttack mode against AutoAttack's own Square (fra31/
auto-attack's ``square.py``, as the ``autoattack`` or ``pyautoattack`` package) when installed."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from robustbench_gan.attacks.square import AUTOATTACK_SETTINGS, SquareAttack
from robustbench_gan.registry import ATTACKS


def autoattack_square(**kwargs) -> SquareAttack:
    return ATTACKS.create("square", **{**AUTOATTACK_SETTINGS, **kwargs})


def test_standalone_defaults_are_unchanged():
    square = ATTACKS.create("square")
    assert (square.n_queries, square.p_init) == (1000, 0.8)
    assert square.rescale_schedule and square.start_counts and square.edge_windows
    assert square.window_per == "sample" and square.window_iterations == 999


def test_the_p_schedule_in_raw_iterations():
    """AutoAttack's ``resc_schedule=False``: over 5,000 queries p ends at p_init / 128; the
    rescaled schedule ends at p_init / 512."""
    raw, rescaled = autoattack_square(n_queries=5000), ATTACKS.create("square", n_queries=5000)
    side = lambda p: round(math.sqrt(p * 32 * 32))  # noqa: E731
    assert raw.side(4500, 32, 32) == side(0.8 / 128) == 3
    assert rescaled.side(4500, 32, 32) == max(side(0.8 / 512), 1) == 1
    # a halving comes after each threshold of the raw index: 10 keeps p_init, 11 halves it
    assert [raw.side(i, 32, 32) for i in (0, 10, 11, 50, 51, 4000, 4001)] == [
        side(0.8 / 2**k) for k in (0, 0, 1, 1, 2, 6, 7)
    ]
    assert raw.window_iterations == 5000 and rescaled.window_iterations == 4999


def test_one_window_and_sign_pattern_per_batch_step():
    batch = autoattack_square()
    x = torch.full((64, 3, 16, 16), 0.5)
    out = batch._batch_update(x, x.clone(), 0.1, 4)
    moved = (out - x).abs().amax(1) > 0
    assert (moved == moved[:1]).all() and moved[0].sum() == 16  # one 4x4 window for all
    assert (out == out[:1]).all()  # and one sign per channel for all
    rows, cols = moved[0].nonzero().unbind(1)
    assert rows.max() < 15 and cols.max() < 15  # AutoAttack's corner never reaches h - s
    per_sample = ATTACKS.create("square")
    moved = (per_sample._window_update(x, x.clone(), 0.1, 4) - x).abs().amax(1) > 0
    assert (moved.flatten(1).sum(1) == 16).all() and not (moved == moved[:1]).all()


def test_queries_counted_in_autoattack_mode(tiny_cnn, digits):
    """At a budget too small to fool anything, every image the model gets right takes the
    stripes and ``n_queries`` window iterations, beside the one clean query per image."""
    x, y = digits.x_test[:64], digits.y_test[:64]
    n_queries = 30
    result = autoattack_square(n_queries=n_queries)(tiny_cnn, x, y, [1e-4])
    correct = (result.clean_pred == y).float().mean().item()
    assert result.forward_passes[0] == pytest.approx(1 + (n_queries + 1) * correct)
    assert (result.success_step[0] < 0).float().mean() == correct


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"window_per": "image"}, "window_per"), ({"rescale_schedule": "no"}, "rescale_schedule"),
     ({"start_counts": 0}, "start_counts"), ({"edge_windows": None}, "edge_windows")],
)  # fmt: skip
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ATTACKS.create("square", **kwargs)


def reference_square():
    for module in ("autoattack.square", "pyautoattack.square"):
        try:
            return importlib.import_module(module).SquareAttack
        except ImportError:
            continue
    pytest.skip("AutoAttack's reference code (autoattack or pyautoattack) is not installed")


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_autoattack_mode_agrees_with_the_reference(tiny_cnn, digits, eps):
    """The same model, images, seed and settings as ``AutoAttack(...).square``: robust
    accuracy within two images (on the CPU the draws, and so the images, are the same)."""
    reference = reference_square()
    x, y = digits.x_test[:100], digits.y_test[:100]
    n_queries = 300
    with torch.random.fork_rng():  # the reference seeds torch's global generator
        theirs = reference(
            tiny_cnn, p_init=0.8, n_queries=n_queries, eps=eps, norm="Linf", n_restarts=1,
            seed=0, device=torch.device("cpu"), resc_schedule=False,
        ).perturb(x, y)  # fmt: skip
    with torch.no_grad():
        their_robust = int((tiny_cnn(theirs).argmax(1) == y).sum())
    ours = autoattack_square(n_queries=n_queries, seed=0)(tiny_cnn, x, y, [eps])
    our_robust = int((ours.pred[0] == y).sum())
    assert abs(our_robust - their_robust) <= 2, (our_robust, their_robust)
    assert their_robust < int((ours.clean_pred == y).sum())  # the attack did something
