"""The attack base class: it owns the budget loop, projection, clipping and success.

A subclass implements one method, :meth:`Attack.perturb`, for one batch at one
budget. Whatever it returns is projected onto the eps-ball around the clean
input and clipped to [0, 1] here, so no attack can forget either, and the
success mask is computed here from the model's predictions on that final point.

Conventions (see docs/conventions.md): images are float32 NCHW in [0, 1], the model
normalizes internally and returns logits, eps is on the [0, 1] scale.
"""

from __future__ import annotations

import abc
import contextlib
import math
import numbers
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils import batch_slices, labels_of, model_device, torch_generator

NORMS = ("linf", "l2")


@dataclass
class AttackResult:
    """Adversarial examples and outcomes of one attack call over a list of budgets.

    Attributes:
        eps: the budgets, in the order given.
        adv: adversarial images, shape ``(len(eps), N, C, H, W)``, on the CPU.
        success: bool ``(len(eps), N)``; untargeted: prediction != y,
            targeted: prediction == target_class.
        pred: int64 ``(len(eps), N)``, the model's predictions on ``adv``.
        clean_pred: int64 ``(N,)``, the model's predictions on the clean images.
        seconds: wall-clock seconds spent crafting the examples at each budget.
        success_step: int64 ``(len(eps), N)`` for iterative attacks: the number of
            iterations after which a sample was first fooled (0: at the start
            point), -1 if never; ``None`` when the attack does not track it. It
            gives robust accuracy against the number of iterations for free.
    """

    eps: tuple[float, ...]
    adv: Tensor
    success: Tensor
    pred: Tensor
    clean_pred: Tensor
    seconds: tuple[float, ...] = ()
    success_step: Tensor | None = None

    def accuracy(self, y: Tensor) -> Tensor:
        """Robust accuracy at each budget, shape ``(len(eps),)``."""
        return (self.pred == y.cpu().view(1, -1)).float().mean(dim=1)


def margin_loss(logits: Tensor, labels: Tensor, *, targeted: bool) -> Tensor:
    """Per sample ``z_y - max_{i != y} z_i``, or ``max_{i != t} z_i - z_t`` when targeted
    (``labels`` then holds the targets): negative exactly when the attack succeeds."""
    own = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, labels.view(-1, 1), float("-inf")).amax(1)
    return other - own if targeted else own - other


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration; both restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


class Attack(abc.ABC):
    """An evasion attack on a classifier, called as ``attack(model, x, y, eps)``.

    Args:
        targeted: push predictions to ``target_class`` instead of away from ``y``.
        seed: seeds a fresh random stream for every budget, so the result at one
            eps does not depend on the other budgets in the list.
        batch_size: images per forward/backward pass.
    """

    norm: ClassVar[str] = "linf"
    targeted_supported: ClassVar[bool] = False
    #: minimal-perturbation attacks (DeepFool, C&W) run once, unbounded, and the
    #: base cuts the result to each budget by projection.
    minimal: ClassVar[bool] = False
    #: score- or decision-based attacks that never ask for a gradient.
    black_box: ClassVar[bool] = False

    def __init__(self, *, targeted: bool = False, seed: int = 0, batch_size: int = 256) -> None:
        if targeted and not self.targeted_supported:
            raise ValueError(f"{type(self).__name__} does not support targeted attacks")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.targeted = bool(targeted)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.rng: torch.Generator = torch_generator(self.seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(norm={self.norm!r}, targeted={self.targeted}, seed={self.seed})"
        )

    @property
    def iterations(self) -> int | None:
        """The number of iterations over which the attack reports per-sample success steps.

        An attack that fills :attr:`AttackResult.success_step` with iteration counts says
        here how many iterations one run spans (over all restarts), so robust accuracy
        against the number of iterations can be drawn up to that count even where every
        image was fooled earlier. It may depend on the budget attacked last (BIM picks its
        steps per budget). ``None`` (the default): the attack reports no success steps, or
        does not count them in iterations (Square counts queries); a curve then ends at
        the last step observed.
        """
        return None

    @property
    def parts(self) -> tuple[str, ...]:
        """The attacks a composite runs in turn (worst_case's list); empty for one attack.
        A composite also fills :attr:`fooled_by` when called."""
        return ()

    #: for a composite, per budget of the last call: the index in :attr:`parts` of the part
    #: whose example fooled each image (-1: none did), shape ``(N,)`` each
    fooled_by: list[Tensor] | None = None

    @abc.abstractmethod
    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Adversarial images for one batch at budget ``eps > 0`` (projected afterwards).

        Iterative attacks may return ``(adv, success_step)`` (see AttackResult).
        Minimal-perturbation attacks are called once with ``eps = inf``.
        """

    def generate(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None = None
    ) -> Tensor:
        """Adversarial examples for one batch, on the batch's device, inside a training loop.

        Unlike a call, this leaves the model's mode and parameters alone (the caller owns
        them; input gradients never touch parameter ``.grad``), copies nothing to the CPU
        and keeps no books; the eps-ball and [0, 1] are still enforced. The random stream
        runs on from one batch to the next (seeded once, at construction).
        """
        if eps == 0:
            return x.detach().clone()
        if self.rng.device != x.device:
            self.rng = torch_generator(self.seed, x.device)
        out = self.perturb(model, x.detach(), y, math.inf if self.minimal else eps, target_class)
        adv = out[0] if isinstance(out, tuple) else out
        return self.project(adv.detach(), x.detach(), eps)

    # -- the budget and batch loop ---------------------------------------------
    def __call__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float | Sequence[float],
        *,
        target_class: Tensor | None = None,
    ) -> AttackResult:
        """Attack ``model`` on ``(x, y)`` at every budget in ``eps``."""
        budgets = self._check_inputs(x, y, eps, target_class)
        x = x.detach().float().cpu()
        y = y.detach().long().cpu()
        target_class = target_class.detach().long().cpu() if target_class is not None else None
        with frozen(model):
            device = model_device(model)
            clean_pred = self._predict(model, x, device)
            if self.minimal:
                advs, steps, seconds = self._cut_minimal(model, x, y, budgets, target_class, device)
            else:
                advs, steps, seconds = [], [], []
                for e in budgets:
                    start = time.perf_counter()
                    adv_e, steps_e = self._attack_budget(model, x, y, e, target_class, device)
                    advs.append(adv_e)
                    steps.append(steps_e)
                    seconds.append(time.perf_counter() - start)
            adv = torch.stack(advs)
            pred = torch.stack([self._predict(model, a, device) for a in adv])
        return AttackResult(
            eps=budgets,
            adv=adv,
            success=self.succeeded(pred, y, target_class),
            pred=pred,
            clean_pred=clean_pred,
            seconds=tuple(seconds),
            success_step=self._stack_steps(steps, clean_pred, y, target_class),
        )

    def _cut_minimal(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        budgets: tuple[float, ...],
        target_class: Tensor | None,
        device: torch.device,
    ) -> tuple[list[Tensor], list[Tensor | None], list[float]]:
        """Run a minimal-perturbation attack once; project it onto each budget's ball."""
        start = time.perf_counter()
        raw, _ = self._attack_budget(model, x, y, math.inf, target_class, device)
        seconds = time.perf_counter() - start
        advs = [self.project(raw, x, e) if e > 0 else x.clone() for e in budgets]
        # the one run serves every budget: each row carries its full time
        return advs, [None] * len(budgets), [seconds] * len(budgets)

    def _stack_steps(
        self, steps: list[Tensor | None], clean_pred: Tensor, y: Tensor, target_class: Tensor | None
    ) -> Tensor | None:
        """Per-budget success steps; at eps 0 a sample is fooled at step 0 or never."""
        if all(s is None for s in steps):
            return None
        at_start = torch.where(self.succeeded(clean_pred, y, target_class), 0, -1)
        return torch.stack([s if s is not None else at_start for s in steps])

    def _attack_budget(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        device: torch.device,
    ) -> tuple[Tensor, Tensor | None]:
        """Adversarial images at one budget, batch by batch, and success steps if tracked."""
        if eps == 0:
            return x.clone(), None
        self.rng = torch_generator(self.seed, device)
        out, steps = [], []
        for s in batch_slices(len(x), self.batch_size):
            xb, yb = x[s].to(device), y[s].to(device)
            tb = target_class[s].to(device) if target_class is not None else None
            result = self.perturb(model, xb, yb, eps, tb)
            adv, step = result if isinstance(result, tuple) else (result, None)
            out.append(self.project(adv.detach(), xb, eps).cpu())
            steps.append(step)
        if not out:
            return x.clone(), None
        tracked = None if any(s is None for s in steps) else torch.cat([s.cpu() for s in steps])
        return torch.cat(out), tracked

    @torch.no_grad()
    def _predict(self, model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
        preds = [
            labels_of(model, x[s].to(device)).cpu() for s in batch_slices(len(x), self.batch_size)
        ]
        return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)

    # -- helpers for subclasses -----------------------------------------------
    def succeeded(self, pred: Tensor, y: Tensor, target_class: Tensor | None) -> Tensor:
        """Per-sample success of predictions ``pred``: != y, or == target_class when targeted."""
        return pred == target_class if self.targeted and target_class is not None else pred != y

    def project(self, x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
        """Project ``x_adv`` onto the eps-ball (``self.norm``) around ``x``, then clip to [0, 1]."""
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            factor = (eps / norms).clamp(max=1.0)
            delta = delta * factor.view(-1, *([1] * (x.dim() - 1)))
        return (x + delta).clamp(0.0, 1.0)

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Gradient of the loss to ascend w.r.t. the input, and the logits at ``x_adv``.

        The loss is cross-entropy on ``y`` (untargeted) or minus cross-entropy on
        ``target_class`` (targeted), summed over the batch so a sample's gradient does
        not depend on the batch it is in.
        """
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(x_adv)
            if self.targeted:
                loss = -F.cross_entropy(logits, target_class, reduction="sum")
            else:
                loss = F.cross_entropy(logits, y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
        return grad.detach(), logits.detach()

    def gradient(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> Tensor:
        """Gradient of the loss to ascend w.r.t. the input (see :meth:`gradient_and_logits`)."""
        return self.gradient_and_logits(model, x_adv, y, target_class)[0]

    # -- validation -------------------------------------------------------------
    def _check_inputs(
        self, x: Tensor, y: Tensor, eps: float | Sequence[float], target_class: Tensor | None
    ) -> tuple[float, ...]:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 4:
            raise ValueError("x must be a float tensor of shape (N, C, H, W)")
        if not isinstance(y, Tensor) or y.dim() != 1 or len(y) != len(x):
            raise ValueError(
                f"y must be a 1-D tensor of {len(x)} labels, got shape {tuple(y.shape)}"
            )
        if y.is_floating_point():
            raise ValueError("y must hold integer class labels")
        if x.numel() and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
            raise ValueError("x must hold finite values in [0, 1]")
        if self.targeted:
            if target_class is None:
                raise ValueError("a targeted attack needs target_class=<labels>")
            if (
                not isinstance(target_class, Tensor)
                or target_class.shape != y.shape
                or target_class.is_floating_point()
            ):
                raise ValueError(f"target_class must be integer labels of shape {tuple(y.shape)}")
        elif target_class is not None:
            raise ValueError(
                "target_class was given to an untargeted attack; construct it with targeted=True"
            )
        budgets = (eps,) if isinstance(eps, numbers.Real) else tuple(eps)
        if not budgets:
            raise ValueError("eps must hold at least one budget")
        for e in budgets:
            if (
                isinstance(e, bool)
                or not isinstance(e, numbers.Real)
                or not math.isfinite(e)
                or e < 0
            ):
                raise ValueError(f"eps must be finite numbers >= 0, got {e!r}")
        return tuple(float(e) for e in budgets)
