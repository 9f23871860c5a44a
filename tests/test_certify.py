"""Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019, arXiv 1902.02918) and its
training defense ``gaussian_augment``: the radius formula on a constant model, abstention on a
random one, seeded draws, certified accuracy under an L2 attack on the smoothed classifier
(SmoothAdv's soft smoothed PGD, Salman et al., NeurIPS 2019, arXiv 1906.04584), and agreement
with ART's ``PyTorchRandomizedSmoothing``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN
from scipy.stats import binom, binomtest, norm
from torch import Tensor, nn

from robustbench_gan.certify import (
    ABSTAIN,
    certified_accuracy,
    certify,
    lower_confidence_bound,
    predict,
)
from robustbench_gan.contract.configs import TrainConfig
from robustbench_gan.models.train import train_classifier
from robustbench_gan.registry import DEFENSES
from robustbench_gan.utils import torch_generator, wilson

SIGMA, N0, N, ALPHA = 0.25, 100, 1000, 0.001
RADII = [0.0, 0.15, 0.3, 0.45, 0.6]
IMAGES = 100  # test images certified and attacked


class Constant(nn.Module):
    """Always class ``label`` of 10, whatever the input."""

    num_classes = 10

    def __init__(self, label: int) -> None:
        super().__init__()
        self.label = label

    def forward(self, x: Tensor) -> Tensor:
        return F.one_hot(torch.full((len(x),), self.label), 10).float()


class Uniform(nn.Module):
    """A class drawn uniformly among 10 for every row, from its own stream."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = torch_generator(seed)

    def forward(self, x: Tensor) -> Tensor:
        return torch.rand(len(x), 10, generator=self.rng)


def noisy_model(digits, *, seed: int = 0, epochs: int = 8, images: int | None = None) -> TinyCNN:
    """A TinyCNN trained with ``gaussian_augment`` at SIGMA on the digits (Adam, lr 0.01)."""
    x, y = digits.x_train[:images], digits.y_train[:images]
    torch.manual_seed(0)
    model = TinyCNN(mean=float(x.mean()), std=float(x.std()))
    defense = DEFENSES.create("gaussian_augment", sigma=SIGMA, seed=seed)
    config = TrainConfig(epochs=epochs, lr=1e-2)
    model.history = train_classifier(
        model, x, y, config=config, seed=0, objective=defense, progress=False
    )
    return model.eval()


@pytest.fixture(scope="module")
def smoothed(digits):
    """The noise-trained model and its certificates on the first IMAGES test digits."""
    model = noisy_model(digits)
    x, y = digits.x_test[:IMAGES], digits.y_test[:IMAGES]
    cert = certify(model, x, sigma=SIGMA, n0=N0, n=N, alpha=ALPHA, seed=0)
    return model, x, y, cert


# -- the formula and the two extreme models
def test_a_constant_model_certifies_the_clopper_pearson_radius():
    x = torch.rand(5, 1, 8, 8)
    cert = certify(Constant(3), x, sigma=SIGMA, n0=N0, n=N, alpha=ALPHA, seed=0)
    assert cert.label.tolist() == [3] * 5  # never abstains
    assert cert.counts[:, 3].tolist() == [N] * 5 and cert.selection[:, 3].tolist() == [N0] * 5
    p_lower = ALPHA ** (1 / N)  # Clopper-Pearson's one-sided lower bound of N out of N
    assert cert.p_lower.tolist() == pytest.approx([p_lower] * 5, rel=1e-12)
    radius = SIGMA * norm.ppf(p_lower)
    assert radius == pytest.approx(0.6158, abs=1e-4)  # 0.25 * Phi^-1(0.993116)
    assert cert.radius.tolist() == pytest.approx([radius] * 5, rel=1e-10)
    assert torch.equal(predict(Constant(3), x, sigma=SIGMA, n=N).label, torch.full((5,), 3))


@pytest.mark.parametrize("count", [0, 1, 480, 700, 999, 1000])
def test_the_lower_bound_is_clopper_pearsons(count):
    """Against scipy's exact binomial interval at 1 - 2 alpha, whose lower end is the
    one-sided 1 - alpha bound (what Cohen et al. and ART compute with statsmodels)."""
    exact = binomtest(count, N).proportion_ci(confidence_level=1 - 2 * ALPHA, method="exact").low
    assert float(lower_confidence_bound(count, N, ALPHA)) == pytest.approx(exact, abs=1e-12)


def test_a_random_model_abstains():
    x = torch.rand(200, 1, 8, 8)
    cert = certify(Uniform(), x, sigma=SIGMA, n0=N0, n=N, alpha=ALPHA, seed=0)
    assert (cert.label == ABSTAIN).all() and (cert.radius == 0).all()
    assert (cert.p_lower < 0.2).all()  # about 1/10 of N for every class
    guess = predict(Uniform(), x, sigma=SIGMA, n=N, alpha=ALPHA, seed=0)
    assert (guess.label == ABSTAIN).float().mean() >= 0.99


# -- seeds and sigma
def test_the_same_seed_gives_the_same_outputs(tiny_cnn, digits):
    x = digits.x_test[:20]

    def run(seed: int, global_seed: int):
        torch.manual_seed(global_seed)  # the draws never come from the global stream
        return certify(tiny_cnn, x, sigma=0.5, n0=20, n=200, batch_size=300, seed=seed)

    first, again, other = run(0, 1), run(0, 2), run(1, 1)
    for field in ("label", "radius", "counts", "selection"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    assert not torch.equal(first.counts, other.counts)
    guesses = [predict(tiny_cnn, x, sigma=0.5, n=200, seed=s).counts for s in (0, 0, 1)]
    assert torch.equal(guesses[0], guesses[1]) and not torch.equal(guesses[0], guesses[2])


def test_the_radius_grows_with_sigma():
    x = torch.rand(2, 1, 8, 8)
    radii = [
        float(certify(Constant(1), x, sigma=s, n0=10, n=N, seed=0).radius[0])
        for s in (0.12, 0.25, 0.5, 1.0)
    ]
    assert radii == sorted(radii) and len(set(radii)) == 4


def test_certified_accuracy_counts_right_labels_at_a_radius():
    pred = torch.tensor([0, 1, ABSTAIN, 3])
    radius = torch.tensor([0.5, 0.2, 0.0, 0.9], dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    rows = certified_accuracy(pred, radius, y, [0.0, 0.2, 0.5, 1.0])
    assert [r.correct for r in rows] == [2, 2, 1, 0]
    assert (rows[2].low, rows[2].high) == pytest.approx(wilson(1, 4))
    assert rows[0].accuracy == 0.5 and rows[0].total == 4


def test_bad_arguments_are_refused(tiny_cnn):
    x = torch.rand(2, 1, 8, 8)
    for bad in ({"sigma": 0}, {"n": 0}, {"alpha": 1.0}, {"batch_size": 0}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))} must be "):
            certify(tiny_cnn, x, **{"sigma": 0.25, "n0": 10, "n": 10, **bad})


# -- certified accuracy against an attack on the smoothed classifier
def smoothed_pgd(model, x, y, eps: float, *, m: int = 16, steps: int = 10, seed: int = 0):
    """L2 PGD on the soft smoothed classifier ``E_d softmax f(x + d)`` (SmoothAdv): ascend
    the cross-entropy of the average of ``m`` noisy softmaxes, normalized steps of
    ``2.5 eps / steps``, projected onto the eps-ball and [0, 1]."""
    if eps == 0:
        return x.clone()
    rng, delta = torch_generator(seed), torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        noise = SIGMA * torch.randn((m, *x.shape), generator=rng)
        logits = model((x + delta).unsqueeze(0).add(noise).flatten(0, 1))
        soft = F.softmax(logits, dim=1).view(m, len(x), -1).mean(0)
        (grad,) = torch.autograd.grad(F.nll_loss(soft.clamp_min(1e-12).log(), y), delta)
        step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        delta = delta.detach() + 2.5 * eps / steps * step
        delta = delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(eps)).view(-1, 1, 1, 1)
        delta = (x + delta).clamp(0, 1) - x  # shrinks every coordinate: stays in the ball
    return (x + delta).detach()


def predict_success(p_lower: np.ndarray, r: float) -> np.ndarray:
    """A lower bound on the chance that PREDICT (N copies, ALPHA) returns the certified class
    at a point within ``r`` of an image certified with ``p_lower``: there the class has
    probability at least ``q = Phi(Phi^-1(p_lower) - r / SIGMA)`` (Cohen et al.'s Theorem 1,
    its Neyman-Pearson bound), and PREDICT returns it whenever its count reaches ``k``, the
    least count that passes the binomial test against all N copies (fewer copies for the top
    two classes only make the test pass sooner)."""
    k = next(k for k in range(N // 2, N + 1) if binomtest(k, N, 0.5).pvalue <= ALPHA)
    q = norm.cdf(norm.ppf(p_lower) - r / SIGMA)
    return binom.sf(k - 1, N, q)


def test_certified_accuracy_never_exceeds_the_accuracy_under_attack(smoothed):
    """At each radius r, the images certified correct at r or more are, up to Monte Carlo error,
    classified correctly by PREDICT after an L2 attack of budget r on the smoothed classifier.

    The margin: for a certified image i (of the set S at r), PREDICT on the attacked image
    returns the right class with probability at least ``s_i`` (:func:`predict_success`) unless
    its certificate is wrong (probability at most ALPHA). The correct predictions on S are
    independent and dominate Bernoulli(s_i) draws, so they fall below
    ``sum s_i - ALPHA |S| - 3 sqrt(sum s_i (1 - s_i))`` with about 0.1% chance: the margin is
    ``|S| - sum s_i`` (certificates too close to r to be predicted reliably) plus those two
    terms."""
    model, x, y, cert = smoothed
    rows = certified_accuracy(cert.label, cert.radius, y, RADII)
    accuracies = []
    for r, row in zip(RADII, rows, strict=True):
        attacked = smoothed_pgd(model, x, y, r)
        assert ((attacked - x).flatten(1).norm(dim=1) <= r + 1e-5).all()
        right = predict(model, attacked, sigma=SIGMA, n=N, alpha=ALPHA, seed=1).label == y
        certified = ((cert.label == y) & (cert.radius >= r)).numpy()
        s = predict_success(cert.p_lower.numpy()[certified], r)
        floor = s.sum() - ALPHA * len(s) - 3 * math.sqrt((s * (1 - s)).sum())
        assert int(right[certified].sum()) >= floor, (r, int(right[certified].sum()), floor)
        slack = len(s) - floor  # the margin, in images
        assert row.correct == len(s)
        assert row.correct <= int(right.sum()) + slack, (r, row.correct, int(right.sum()), slack)
        print(
            f"r={r}: certified {row.correct}, right under attack {int(right.sum())}, "
            f"margin {slack:.1f}"
        )
        accuracies.append(float(right.float().mean()))
    assert accuracies[-1] < accuracies[0] - 0.1, accuracies  # the attack does something


# -- ART
def test_agrees_with_art(smoothed, monkeypatch):
    """ART's ``PyTorchRandomizedSmoothing.certify`` (its ``sample_size`` is n0) on the same
    model, images, sigma, n0, n and alpha. Its noise is NumPy's global stream, so the two agree
    up to Monte Carlo error: the certified accuracy at each radius within 3 binomial standard
    errors over the images, and the labels (an abstention included) on most images."""
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    model, x, y, cert = smoothed
    art = PyTorchRandomizedSmoothing(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        device_type="cpu",
        sample_size=N0,
        scale=SIGMA,
        alpha=ALPHA,
    )
    try:  # ART computes the bound with statsmodels, which the project does not install
        import statsmodels  # noqa: F401
    except ImportError:  # the same Clopper-Pearson bound, from scipy's exact interval
        exact = lambda k, n: binomtest(int(k), n).proportion_ci(1 - 2 * ALPHA, "exact").low  # noqa: E731
        monkeypatch.setattr(art, "_lower_confidence_bound", exact)
    np.random.seed(0)
    label, radius = art.certify(x.numpy(), n=N, batch_size=1000)
    ours = certified_accuracy(cert.label, cert.radius, y, RADII)
    theirs = certified_accuracy(torch.from_numpy(label), torch.from_numpy(radius), y, RADII)
    for a, b in zip(ours, theirs, strict=True):
        p = (a.accuracy + b.accuracy) / 2
        assert abs(a.accuracy - b.accuracy) <= 3 * math.sqrt(p * (1 - p) / IMAGES) + 1e-9, (a, b)
    same = int((cert.label == torch.from_numpy(label)).sum())
    print(
        f"ART: same label on {same} of {IMAGES}; certified correct (ours, ART) by radius:",
        [(a.correct, b.correct) for a, b in zip(ours, theirs, strict=True)],
        f"mean |radius difference| {np.abs(cert.radius.numpy() - radius).mean():.4f}",
    )
    assert same >= 0.95 * IMAGES, same
    assert np.abs(cert.radius.numpy() - radius).mean() < 0.05


# -- the training defense
def test_gaussian_augment_trains_on_seeded_noise(digits):
    x = digits.x_train[:256]

    def draws(seed: int, global_seed: int) -> Tensor:
        torch.manual_seed(global_seed)
        return DEFENSES.create("gaussian_augment", sigma=0.5, seed=seed).noisy(x)

    first = draws(0, 1)
    assert torch.equal(first, draws(0, 2)) and not torch.equal(first, draws(1, 1))
    assert (first - x).std().item() == pytest.approx(0.5, rel=0.05)
    assert DEFENSES.create("gaussian_augment").sigma == 0.25
    with pytest.raises(ValueError, match="^sigma must be "):
        DEFENSES.create("gaussian_augment", sigma=0.0)


def test_gaussian_augment_lowers_the_loss_and_is_deterministic(digits):
    models = [noisy_model(digits, seed=s, epochs=3, images=512) for s in (0, 0, 1)]
    losses = models[0].history.epoch_loss
    assert losses[-1] < 0.7 * losses[0], losses
    states = [m.state_dict() for m in models]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
