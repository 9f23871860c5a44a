"""The attack base class: it owns the budget loop, projection, clipping and success.

A subclass implements one method, :meth:`Attack.perturb`, for one batch at one
budget. Whatever it returns is checked (shape, finite values; leaving the ball or
[0, 1] is flagged), projected onto the eps-ball around the clean input and clipped
to [0, 1] here, so no attack can forget either, and the success mask is computed
here from the model's predictions on that final point.

Conventions (see docs/conventions.md): images are float32 NCHW in [0, 1], the model
normalizes internally and returns logits, eps is on the [0, 1] scale.
"""

from __future__ import annotations

import abc
import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, Seed, checked
from ..errors import UserError
from ..utils import PassCounter, batch_slices, eval_mode, labels_of, model_device, torch_generator
from .inputs import check_call

#: how far an output may leave [0, 1] or the ball (plus this much of eps for L2) unflagged
TOLERANCE = 1e-6


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
            gives robust accuracy against the number of iterations for free. A final
            success the attack left at -1 is at its last iterate (:attr:`~Attack.iterations`).
        forward_passes: per budget, rows through the model's forward while crafting,
            divided by N (black-box: queries per image), counted at the model's boundary
            (adapters, composites), without the base's clean and final predictions; a
            minimal attack's one run counts in every row, like seconds. NaN: no hooks.
        backward_passes: per budget, rows whose gradient went back through the model's
            output while crafting, divided by N.
        invalid_output: bool ``(len(eps), N)``: a non-finite output (NaN, inf), replaced
            by the clean image (so no success; its success step is the clean image's).
        projected_output: bool ``(len(eps), N)``: the output left [0, 1] or the eps-ball
            by more than :data:`TOLERANCE` (for L2 also relative to eps) and was projected;
            for a minimal attack, only its unbounded output leaving [0, 1] counts.
    """

    eps: tuple[float, ...]
    adv: Tensor
    success: Tensor
    pred: Tensor
    clean_pred: Tensor
    seconds: tuple[float, ...] = ()
    success_step: Tensor | None = None
    forward_passes: tuple[float, ...] = ()
    backward_passes: tuple[float, ...] = ()
    invalid_output: Tensor | None = None
    projected_output: Tensor | None = None

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
    """Eval mode and no parameter gradients for the duration; afterwards every submodule's
    own mode (:func:`~robustbench_gan.utils.eval_mode`) and every parameter's
    ``requires_grad`` are as they were, even if the body raised."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with eval_mode(model):
            for p, _ in flags:  # per parameter: a TorchScript module has no requires_grad_
                p.requires_grad_(False)
            yield model
    finally:
        for p, flag in flags:
            if p.requires_grad != flag:
                p.requires_grad_(flag)


class Run(NamedTuple):
    """One budget's crafting: images (CPU), success steps and the books kept on it."""

    adv: Tensor
    step: Tensor | None
    iterations: int | None
    seconds: float
    forward: float
    backward: float
    invalid: Tensor
    projected: Tensor
    clean: bool = False  # the images are the clean batch (eps 0)


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
    min_classes: int = 2  # the fewest classes it runs on, as configured (APGD-DLR: 3)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's own ``__init__`` checks its arguments against its annotations
        (:func:`~robustbench_gan.bounds.checked`), as the suite does (``check_ranges``): the
        bounds are declared once, in the signature, and hold for Python callers too."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = checked(cls.__init__)  # type: ignore[method-assign]

    @checked
    def __init__(self, *, targeted: bool = False, seed: Seed = 0, batch_size: Count = 256) -> None:
        if targeted and not self.targeted_supported:
            raise ValueError(f"{type(self).__name__} does not support targeted attacks")
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
        """The attacks a composite runs in turn (cascade's list); empty for one attack.
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
        clean_pred: Tensor | None = None,
    ) -> AttackResult:
        """Attack ``model`` on ``(x, y)`` at every budget in ``eps``.

        ``clean_pred``: the model's predictions on ``x``, if already known (shared by
        several attacks on one model); the clean prediction pass is then skipped.
        """
        budgets = check_call(self, x, y, eps, target_class)
        x = x.detach().float().cpu()
        y = y.detach().long().cpu()
        target_class = target_class.detach().long().cpu() if target_class is not None else None
        if clean_pred is not None:
            if not isinstance(clean_pred, Tensor) or clean_pred.shape != y.shape:
                raise ValueError(f"clean_pred must be {len(y)} predicted labels")
            clean_pred = clean_pred.detach().long().cpu()
        with frozen(model):
            device = model_device(model)
            if clean_pred is None:
                clean_pred = self._predict(model, x, device)
            if self.minimal:
                run = self._attack_budget(model, x, y, math.inf, target_class, device)
                runs = [self._cut(run, x, e) for e in budgets]
            else:
                runs = [self._attack_budget(model, x, y, e, target_class, device) for e in budgets]
            # an eps-0 row is the clean batch itself: its predictions are known
            preds = [clean_pred if r.clean else self._predict(model, r.adv, device) for r in runs]
            pred = torch.stack(preds)
        success = self.succeeded(pred, y, target_class)
        at_start = torch.where(self.succeeded(clean_pred, y, target_class), 0, -1)
        n = max(len(x), 1)
        return AttackResult(
            eps=budgets,
            adv=torch.stack([r.adv for r in runs]),
            success=success,
            pred=pred,
            clean_pred=clean_pred,
            seconds=tuple(r.seconds for r in runs),
            success_step=self._stack_steps(runs, success, at_start),
            forward_passes=tuple(r.forward / n for r in runs),
            backward_passes=tuple(r.backward / n for r in runs),
            invalid_output=torch.stack([r.invalid for r in runs]),
            projected_output=torch.stack([r.projected for r in runs]),
        )

    def _cut(self, run: Run, x: Tensor, eps: float) -> Run:
        """A minimal attack's one run cut to budget ``eps`` by projection; the run serves
        every budget, so each row carries its full time and passes."""
        if eps > 0:
            return run._replace(adv=self.project(run.adv, x, eps), step=None)
        no = torch.zeros_like(run.invalid)
        return run._replace(adv=x.clone(), step=None, clean=True, invalid=no, projected=no)

    @staticmethod
    def _stack_steps(runs: list[Run], success: Tensor, at_start: Tensor) -> Tensor | None:
        """Per-budget success steps; at eps 0 (and for an invalid output) a sample is fooled
        at step 0 or never; a final success the attack left at -1 is at its last iterate."""
        if all(r.step is None for r in runs):
            return None
        steps = []
        for run, fooled in zip(runs, success):
            step = at_start if run.step is None else torch.where(run.invalid, at_start, run.step)
            if run.step is not None and run.iterations is not None:
                step = torch.where((step < 0) & fooled, run.iterations, step)
            steps.append(step)
        return torch.stack(steps)

    def _attack_budget(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        device: torch.device,
    ) -> Run:
        """Adversarial images at one budget, batch by batch, with the run's books."""
        if eps == 0 or len(x) == 0:
            no = torch.zeros(len(x), dtype=torch.bool)
            return Run(x.clone(), None, None, 0.0, 0.0, 0.0, no, no, clean=True)
        self.rng = torch_generator(self.seed, device)
        out, steps, flags = [], [], []
        counter = PassCounter()
        start = time.perf_counter()
        with counter.watching(model):
            for s in batch_slices(len(x), self.batch_size):
                xb, yb = x[s].to(device), y[s].to(device)
                tb = target_class[s].to(device) if target_class is not None else None
                adv, step, bad, moved = self._checked(self.perturb(model, xb, yb, eps, tb), xb, eps)
                out.append(adv.cpu())
                steps.append(step)
                flags.append(torch.stack([bad, moved]).cpu())
        seconds = time.perf_counter() - start
        tracked = None if any(s is None for s in steps) else torch.cat([s.cpu() for s in steps])
        invalid, projected = torch.cat(flags, dim=1)
        passes = (counter.forward, counter.backward)
        return Run(torch.cat(out), tracked, self.iterations, seconds, *passes, invalid, projected)

    def _checked(self, result: object, x: Tensor, eps: float) -> tuple[Tensor, Any, Tensor, Tensor]:
        """One batch's output projected, its success steps, which images were not finite (the
        clean ones stand in) and which left the ball (not checked at eps = inf) or [0, 1]."""
        adv, step = result if isinstance(result, tuple) and len(result) == 2 else (result, None)
        name = getattr(self, "label", type(self).__name__)
        if not isinstance(adv, Tensor) or adv.shape != x.shape:
            got = f"a {type(adv).__name__}"
            got = f"images of shape {tuple(adv.shape)}" if isinstance(adv, Tensor) else got
            raise UserError(f"attack {name} returned {got} for a batch of shape {tuple(x.shape)}")
        if step is not None and (not isinstance(step, Tensor) or step.shape != (len(x),)):
            raise UserError(f"attack {name} returned success steps that are not one per image")
        adv = adv.detach().to(device=x.device, dtype=x.dtype)
        invalid = ~torch.isfinite(adv).flatten(1).all(1)
        if invalid.any():
            adv = torch.where(invalid.view(-1, *([1] * (x.dim() - 1))), x, adv)
        flat = adv.flatten(1)
        outside = (flat.amin(1) < -TOLERANCE) | (flat.amax(1) > 1 + TOLERANCE)
        if math.isfinite(eps):
            delta = flat - x.flatten(1)
            if self.norm == "linf":
                outside |= delta.abs().amax(1) > eps + TOLERANCE
            else:
                outside |= delta.norm(dim=1) > eps * (1 + TOLERANCE) + TOLERANCE
        return self.project(adv, x, eps), step, invalid, outside

    @torch.no_grad()
    def _predict(self, model: nn.Module, x: Tensor, device: torch.device) -> Tensor:
        slices = batch_slices(len(x), self.batch_size)
        preds = [labels_of(model, x[s].to(device)).cpu() for s in slices]
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
        not depend on the batch it is in; on a model that fuses its members' losses
        (``fuses_losses``, an ensemble of surrogates), their mean cross-entropy.
        """
        x_adv = x_adv.detach().requires_grad_(True)
        labels = target_class if self.targeted else y
        with torch.enable_grad():
            if getattr(model, "fuses_losses", False):  # an ensemble of surrogates fusing
                loss, logits = model.cross_entropy(x_adv, labels)  # losses (models/ensemble.py)
            else:
                logits = model(x_adv)
                loss = F.cross_entropy(logits, labels, reduction="sum")
            (grad,) = torch.autograd.grad(-loss if self.targeted else loss, x_adv)
        return grad.detach(), logits.detach()

    def gradient(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> Tensor:
        """Gradient of the loss to ascend w.r.t. the input (see :meth:`gradient_and_logits`)."""
        return self.gradient_and_logits(model, x_adv, y, target_class)[0]
