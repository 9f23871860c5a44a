"""Models that do not give finite (N, classes) logits: refused in one line when loaded, by
every route (`rbg eval`, `benchmark()`, a suite's `[[targets]]`), and a model with NaN on
some inputs only is evaluated without a crash and flagged for what it is."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

import robustbench_gan
from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.evaluations.load_classifier import check_outputs
from robustbench_gan.indicators.checks import indicators_of, same_outputs

NETS = '''
import torch
from torch import nn


class Linear(nn.Module):
    """A linear map of the 8x8 digits to ``k`` outputs."""

    def __init__(self, k: int = 10):
        super().__init__()
        self.lin = nn.Linear(64, k)

    def forward(self, x):
        return self.lin(x.flatten(1))


class Three(Linear):
    """3 logits for 10 classes."""

    def __init__(self):
        super().__init__(3)


class Flat(Linear):
    """One number per image: a 1-D output."""

    def forward(self, x):
        return super().forward(x).sum(1)


class AllNan(Linear):
    def forward(self, x):
        return super().forward(x) * float("nan")


class SomeNan(Linear):
    """NaN on bright images only (not the first two test images, but two of the first 20
    and many adversarial ones); deterministic."""

    def forward(self, x):
        out = super().forward(x)
        bright = x.flatten(1).mean(1) > 0.34
        return torch.where(bright[:, None], torch.full_like(out, float("nan")), out)
'''
EPS = 0.1
REFUSED = {
    "Three": "gives outputs of shape (N, 3), want (N, 10)",
    "Flat": "gives outputs of shape (N,), want (N, 10)",
    "AllNan": "gives non-finite outputs (NaN or inf) on clean test images",
}


@pytest.fixture
def bad_nets(tmp_path, monkeypatch):
    """The module above in the working directory, each class's state dict beside it."""
    (tmp_path / "rbg_bad_nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import rbg_bad_nets

    for name in (*REFUSED, "SomeNan"):
        torch.manual_seed(0)
        torch.save(getattr(rbg_bad_nets, name)().state_dict(), tmp_path / f"{name}.pt")
    yield tmp_path, rbg_bad_nets
    monkeypatch.delitem(sys.modules, "rbg_bad_nets")


def eval_args(name: str, *more: str) -> list[str]:
    return [
        "eval", "--model", f"rbg_bad_nets:{name}", "--weights", f"{name}.pt",
        "--dataset", "digits", "--eps", str(EPS), "--n", "20", "--cache-dir", "c",
        "--no-progress", *more,
    ]  # fmt: skip


def one_line(capsys, args: list[str], message: str) -> None:
    """`rbg ARGS` exits 2 with exactly one line, `rbg: error: ...MESSAGE...`."""
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("rbg: error:") and message in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_eval_refuses_a_model_without_finite_class_scores(bad_nets, capsys, name):
    folder, _ = bad_nets
    one_line(capsys, eval_args(name, "--attacks", "fgsm", "--out", "o"), REFUSED[name])
    assert not list(folder.glob("o/*.csv"))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_benchmark_refuses_a_model_without_finite_class_scores(bad_nets, name):
    _, nets = bad_nets
    common = {"dataset": "digits", "eps": EPS, "n_examples": 20, "attacks": ["fgsm"]}
    with pytest.raises(UserError, match=REFUSED[name].replace("(", r"\(").replace(")", r"\)")):
        robustbench_gan.benchmark(f"rbg_bad_nets:{name}", weights=f"{name}.pt", **common)
    module = getattr(nets, name)().train()
    module.lin.eval()  # mixed modes come back as they were, refused or not
    with pytest.raises(UserError, match="gives"):
        robustbench_gan.benchmark(module, **common)
    assert module.training and not module.lin.training


def test_a_suite_target_of_the_wrong_shape_is_refused(bad_nets, capsys):
    folder, _ = bad_nets
    suite = folder / "s.toml"
    suite.write_text(
        '[dataset]\nname = "digits"\ntest_only = true\n[eval]\neps = [0.1]\nn = 20\n'
        '[[targets]]\nname = "rbg_bad_nets:Three"\nlabel = "three"\nweights = "Three.pt"\n'
        '[[attacks]]\nname = "fgsm"\n'
    )
    run = ["run", str(suite), "--out", str(folder / "o"), "--cache-dir", "c", "--no-progress"]
    one_line(capsys, run, "model 'three' gives outputs of shape (N, 3), want (N, 10)")
    assert not list(folder.glob("o/*.csv"))


def test_the_check_keeps_modes_and_device_and_names_odd_shapes(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Dropout(0.5)).train()
    model[1].eval()
    x = digits.x_test[:2]
    check_outputs(model, x, 10, "m")  # a (2, 10) output passes
    assert model.training and not model[1].training and model[2].training
    assert next(model.parameters()).device.type == "cpu"
    cases = [
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Flatten(0)), r"\(20,\) for 2 images"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(128, 10)), r"\(10,\) for 2 images"),
        (nn.Identity(), r"\(N, 1, 8, 8\)"),
    ]
    for wrong, shape in cases:
        with pytest.raises(UserError, match=f"model 'm' gives outputs of shape {shape}"):
            check_outputs(wrong, x, 10, "m")
    infinite = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        infinite[1].bias[4] = float("inf")
    with pytest.raises(UserError, match=r"non-finite outputs \(NaN or inf\)"):
        check_outputs(infinite, x, 10, "m")


def test_nan_on_some_inputs_is_evaluated_and_flagged_not_unstable(bad_nets, capsys):
    """A deterministic model with NaN on a few clean and many adversarial images: every
    attack runs, and the audit says non_finite_outputs, not unstable_predictions."""
    folder, _ = bad_nets
    attacks = ["fgsm", "pgd", "apgd_ce", "fab", "square", "deepfool"]
    result = robustbench_gan.benchmark(
        "rbg_bad_nets:SomeNan", weights="SomeNan.pt", dataset="digits", eps=EPS,
        n_examples=20, attacks=attacks, cache_dir="c",
    )  # fmt: skip
    assert "non_finite_outputs" in result.indicators
    assert "unstable_predictions" not in result.indicators
    assert set(result.attacks["attack"]) >= set(attacks)
    assert main(eval_args("SomeNan", "--out", "o")) == 0  # AutoAttack's standard version
    out = "".join(capsys.readouterr())
    assert "non_finite_outputs" in out and "unstable_predictions" not in out


def test_same_outputs_holds_nan_equal_to_nan():
    nan, inf = float("nan"), float("inf")
    first = torch.tensor([[1.0, nan, inf], [-inf, 0.0, 2.0]])
    assert same_outputs(first, first.clone()) and not torch.equal(first, first.clone())
    assert not same_outputs(first, first.flip(1))
    assert not same_outputs(first, torch.where(first == 2.0, 2.0 + 1e-6, first))
    assert not same_outputs(first, first[:1])
    assert not same_outputs(first, -first)  # inf of the other sign


class PartlyNan(nn.Module):
    """Deterministic logits, NaN for the first images of every batch."""

    def __init__(self, inner: nn.Module, noise: float = 0.0) -> None:
        super().__init__()
        self.inner, self.noise = inner, noise

    def forward(self, x):
        out = self.inner(x + self.noise * torch.randn_like(x))
        return torch.cat([out[:3] * float("nan"), out[3:]])


def test_the_audit_tells_non_finite_from_nondeterministic(digits):
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    x, y = digits.x_test[:30], digits.y_test[:30]
    fired = indicators_of(PartlyNan(inner).eval(), x, y)
    assert "non_finite_outputs" in fired and "unstable_predictions" not in fired
    noisy = indicators_of(PartlyNan(inner, noise=0.05).eval(), x, y)
    assert "unstable_predictions" in noisy and "non_finite_outputs" in noisy
    assert "non_finite_outputs" not in indicators_of(inner.eval(), x, y)
