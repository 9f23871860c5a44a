"""What a defended model may tell an attacker: the hooks adaptive attacks read.

A defense that hides its gradients (a non-differentiable input front, a step-function
encoding, randomness) is evaluated honestly only by an attack that knows how to get around
it (Athalye, Carlini and Wagner, "Obfuscated Gradients Give a False Sense of Security",
ICML 2018; Tramèr, Carlini, Brendel and Madry, "On Adaptive Attacks to Adversarial Example
Defenses", NeurIPS 2020). A model built by such a defense says what it knows, through two
optional attributes, and the ``adaptive`` attack and the indicators of attack failure read
them through the functions below (never the defense's class):

- ``gradient_approximation()`` (a method): a differentiable module that computes the same
  classifier as the model, or a close approximation of it, on the same inputs (images in
  [0, 1], logits out). BPDA (Backward Pass Differentiable Approximation) runs the true model
  forward and takes its gradient from this module. For an input front ``f(g(x))`` with
  ``g(x) ~ x`` (quantization, compression) it is ``f`` itself (BPDA with the identity); for an
  encoding it is a soft version of the encoding followed by the same network.
- ``randomized`` (a bool): the forward pass draws fresh random numbers (random resizing,
  additive noise), so one gradient is one sample and attacks should average over several
  (Expectation over Transformation, EOT).

A model with neither is taken as it is: its own gradients, one sample.

A stand-in may say one thing more: ``deployed_draws`` (an int), that its outputs are the
deployed model's own, averaged over that many draws of its randomness (1 for one draw), as a
BPDA view that runs the true forward does (Defense-GAN's). Attacks then craft on it alone
instead of running the model a second time for the values, and EOT needs that many times
fewer draws of it.
"""

from __future__ import annotations

from torch import nn


def gradient_approximation(model: nn.Module) -> nn.Module | None:
    """The model's differentiable stand-in for BPDA, or ``None`` where it declares none."""
    method = getattr(model, "gradient_approximation", None)
    if not callable(method):
        return None
    approximation = method()
    if approximation is not None and not isinstance(approximation, nn.Module):
        raise TypeError(
            f"{type(model).__name__}.gradient_approximation() must return an nn.Module or "
            f"None, got {type(approximation).__name__}"
        )
    return approximation


def declares_randomized(model: nn.Module) -> bool:
    """Whether the model says its forward pass is random (``randomized = True``)."""
    return bool(getattr(model, "randomized", False))


def deployed_draws(stand_in: nn.Module) -> int:
    """How many draws of the deployed model's outputs the stand-in's outputs average; 0 where
    it does not say its outputs are the model's."""
    draws = getattr(stand_in, "deployed_draws", 0)
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 0:
        raise TypeError(
            f"{type(stand_in).__name__}.deployed_draws must be a count of draws, got {draws!r}"
        )
    return draws
