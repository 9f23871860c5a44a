"""Auto-PGD with the cross-entropy (APGD-CE) or the DLR loss (APGD-DLR), L-inf and L2.

Croce and Hein, "Reliable Evaluation of Adversarial Robustness with an Ensemble
of Diverse Parameter-free Attacks", ICML 2020, https://arxiv.org/abs/2003.01690.
"""

from __future__ import annotations

import abc
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, Range, Seed
from ..contract.norms import NormName
from ..registry import ATTACKS
from .pgd import PGD, rows, take


def apgd_checkpoints(n_iter: int) -> list[int]:
    """The iterations ``w_j = ceil(p_j * n_iter)`` at which APGD may halve its step.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``
    while ``p_j <= 1``; kept in whole percent so the ceiling is exact. For
    ``n_iter = 100``: 0, 22, 41, 57, 70, 80, 87, 93, 99.
    """
    percents, before, p = [0], 0, 22
    while p <= 100:
        percents.append(p)
        before, p = p, p + max(p - before - 3, 6)
    return sorted({-(-q * n_iter // 100) for q in percents})


class APGD(PGD):
    """Step-size-free PGD with momentum; a subclass names the loss it ascends.

    From a random start, each step ``z = P(x_k + eta * dir(grad))`` (sign for
    L-inf, normalized gradient for L2) is followed by the momentum step
    ``x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))`` (plain ``z`` on
    the first step). ``eta`` starts at ``2 * eps`` and, per sample, is halved at
    each checkpoint (:func:`apgd_checkpoints`) where the loss rose in fewer than
    ``rho`` of the steps since the last one, or where the step was not halved at
    the last checkpoint and the best loss has not improved since; a halved
    sample restarts from its highest-loss point.

    Args:
        norm: ``"linf"`` (default) or ``"l2"``.
        steps: iterations ``N_iter`` (paper: 100).
        restarts: random restarts (paper: 1); later ones attack only the
            samples earlier ones did not break.
        rho: the fraction of rising steps below which the step is halved (0.75).
        eot_iter: draws each gradient is averaged over (1; AutoAttack's ``rand``
            version: 20), Expectation over Transformation for randomized defenses
            (Athalye et al. 2018); the loss is averaged too, the logits are the last draw's.

    Per sample it returns the first iterate that succeeds (and reports its
    step), else the point of highest loss. Also takes ``targeted``, ``seed``,
    ``batch_size``. Cost per image and restart: ``steps + 1`` forward and ``steps``
    backward passes (the last iterate's gradient is never used; each pass with a
    gradient ``eot_iter`` times), fewer once every image of a batch is fooled.
    """

    targeted_supported: ClassVar[bool] = True
    momentum: ClassVar[float] = 0.75

    def __init__(
        self,
        *,
        norm: NormName = "linf",
        steps: Count = 100,
        restarts: Count = 1,
        rho: Annotated[float, Range(0, 1, open_low=True)] = 0.75,
        eot_iter: Count = 1,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(
            norm=norm,
            steps=steps,
            rel_stepsize=2.0,
            random_start=True,
            restarts=restarts,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.rho = float(rho)
        self.eot_iter = int(eot_iter)

    @abc.abstractmethod
    def loss(self, logits: Tensor, y: Tensor, target_class: Tensor | None) -> Tensor:
        """Per-sample loss to ascend."""

    def _loss_and_gradient(
        self,
        model: nn.Module,
        x_adv: Tensor,
        y: Tensor,
        target_class: Tensor | None,
        need_grad: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample loss, its input gradient (zeros, and no backward pass, unless
        ``need_grad``) and the logits at ``x_adv``."""
        if not need_grad:
            with torch.no_grad():
                logits = model(x_adv)
                return self.loss(logits, y, target_class), torch.zeros_like(x_adv), logits
        x_adv = x_adv.detach().requires_grad_(True)
        total_loss, total_grad = torch.zeros(()), torch.zeros(())
        for _ in range(self.eot_iter):  # EOT: a randomized model's gradient, averaged
            with torch.enable_grad():
                logits = model(x_adv)
                loss = self.loss(logits, y, target_class)
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            if self.eot_iter == 1:
                return loss.detach(), grad.detach(), logits.detach()
            total_loss, total_grad = total_loss + loss.detach(), total_grad + grad.detach()
        return total_loss / self.eot_iter, total_grad / self.eot_iter, logits.detach()

    def _run(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        target_class: Tensor | None,
        check_last: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """One restart: per sample the first successful iterate (else the highest-loss one)
        and the step at which it was found (-1: never). Every iterate is checked (its
        loss needs the forward pass anyway), so ``check_last`` changes nothing."""
        first = x.clone()
        step = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        cur = self.project(x + self._random_delta(x, eps), x, eps)
        loss, grad, logits = self._loss_and_gradient(model, cur, y, target_class)
        self._keep_first_success(first, step, 0, cur, logits, y, target_class)
        prev, best, best_loss, best_grad = cur, cur.clone(), loss.clone(), grad.clone()
        eta = torch.full((len(x),), self.rel_stepsize * eps, device=x.device, dtype=x.dtype)
        rises = torch.zeros_like(loss)
        reduced = torch.zeros_like(loss, dtype=torch.bool)
        best_at_checkpoint, last_checkpoint = best_loss.clone(), 0
        checkpoints = set(apgd_checkpoints(self.steps)) - {0}
        shape = (-1, *([1] * (x.dim() - 1)))
        # the rows still attacked (None: all), as in PGD: fooled samples leave the batch
        index, xs, ys, ts, fs, ss = None, x, y, target_class, first, step
        for k in range(1, self.steps + 1):
            keep = self._live(ss)
            if keep is not None:
                if index is not None:  # write the leaving rows' results back
                    first[index], step[index] = fs, ss
                if len(keep) == 0:
                    return first, step
                index = keep if index is None else index[keep]
                xs, ys, ts, fs, ss, cur, prev, best, loss, grad = take(
                    keep, xs, ys, ts, fs, ss, cur, prev, best, loss, grad
                )
                best_loss, best_grad, eta, rises, reduced, best_at_checkpoint = take(
                    keep, best_loss, best_grad, eta, rises, reduced, best_at_checkpoint
                )
            z = self.project(cur + eta.view(shape) * self._direction(grad), xs, eps)
            a = 1.0 if k == 1 else self.momentum
            prev, cur = cur, self.project(cur + a * (z - cur) + (1 - a) * (cur - prev), xs, eps)
            # the last iterate's gradient would never be used: a forward pass only
            last = k == self.steps
            new_loss, grad, logits = self._loss_and_gradient(model, cur, ys, ts, not last)
            self._keep_first_success(fs, ss, k, cur, logits, ys, ts)
            rises += (new_loss > loss).to(rises.dtype)
            loss = new_loss
            up = loss > best_loss  # kept without a device sync
            torch.where(rows(up, cur), cur, best, out=best)
            torch.where(up, loss, best_loss, out=best_loss)
            torch.where(rows(up, grad), grad, best_grad, out=best_grad)
            if k in checkpoints and not last:  # a halving after the last step changes nothing
                stalled = ~reduced & (best_loss <= best_at_checkpoint)
                halve = (rises < self.rho * (k - last_checkpoint)) | stalled
                eta[halve] /= 2
                cur[halve], grad[halve] = best[halve], best_grad[halve]
                loss[halve] = best_loss[halve]
                reduced, best_at_checkpoint, last_checkpoint = halve, best_loss.clone(), k
                rises.zero_()
        torch.where(rows(ss < 0, fs), best, fs, out=fs)
        if index is not None:
            first[index], step[index] = fs, ss
        return first, step


@ATTACKS.register("apgd_ce")
class APGDCE(APGD):
    """APGD on the cross-entropy (targeted: minus the cross-entropy on the target class).

    Defaults as in the paper: ``norm="linf", steps=100, restarts=1, rho=0.75``,
    initial step ``2 * eps``, momentum 0.75 (see :class:`APGD`).
    """

    def loss(self, logits: Tensor, y: Tensor, target_class: Tensor | None) -> Tensor:
        if self.targeted:
            return -F.cross_entropy(logits, target_class, reduction="none")
        return F.cross_entropy(logits, y, reduction="none")


@ATTACKS.register("apgd_dlr")
class APGDDLR(APGD):
    """APGD on the Difference of Logits Ratio loss, invariant to shifting and scaling logits.

    Untargeted: ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)``; targeted:
    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``, with ``z_pi`` the logits
    sorted in decreasing order (needs 3, resp. 4, classes). Defaults as in the
    paper: ``norm="linf", steps=100, restarts=1, rho=0.75`` (see :class:`APGD`).
    """

    @property
    def min_classes(self) -> int:  # type: ignore[override]
        """The loss reads the 3rd largest logit; targeted, the 4th."""
        return 4 if self.targeted else 3

    def loss(self, logits: Tensor, y: Tensor, target_class: Tensor | None) -> Tensor:
        if logits.shape[1] < self.min_classes:
            raise ValueError(f"the DLR loss needs at least {self.min_classes} classes")
        z = logits.sort(dim=1, descending=True).values
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        if self.targeted:
            z_t = logits.gather(1, target_class[:, None]).squeeze(1)
            return -(z_y - z_t) / (z[:, 0] - (z[:, 2] + z[:, 3]) / 2 + 1e-12)
        is_y = F.one_hot(y, logits.shape[1]).bool()
        z_other = logits.masked_fill(is_y, float("-inf")).amax(dim=1)
        return -(z_y - z_other) / (z[:, 0] - z[:, 2] + 1e-12)
