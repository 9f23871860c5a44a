"""FAB, the Fast Adaptive Boundary attack (L-inf and L2), untargeted and as FAB-T.

Croce and Hein, "Minimally distorted adversarial examples with a fast adaptive
boundary attack", ICML 2020, https://arxiv.org/abs/1907.02044; FAB-T and its
settings as run in AutoAttack: Croce and Hein, "Reliable Evaluation of Adversarial
Robustness with an Ensemble of Diverse Parameter-free Attacks", ICML 2020,
https://arxiv.org/abs/2003.01690.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bounds import Count, Fraction, Range, Seed
from ..contract.norms import NormName
from ..registry import ATTACKS
from .base import Attack


@ATTACKS.register("fab")
class FAB(Attack):
    """Step to the nearest linearized boundary, biased toward the clean image.

    At the iterate ``x1`` the decision boundaries ``f_k - f_y = 0`` are linearized;
    the closest one (its value over the dual norm of its gradient) gives the
    hyperplane ``pi``. Both ``x1`` and the clean image ``x0`` are projected onto
    ``pi`` intersected with [0, 1]^D (minimal in the attack's norm; the box corner
    nearest ``pi`` when ``pi`` is out of reach), giving steps ``d1`` and ``d2``; with
    ``alpha = min(|d1| / (|d1| + |d2|), alpha_max)`` the next iterate is
    ``clip((1 - alpha)(x1 + eta d1) + alpha (x0 + eta d2), 0, 1)``. An iterate that
    is misclassified is recorded if it is the smallest so far, then pulled back to
    ``x0 + beta (x1 - x0)``. There is no early stop within a run: later steps look for
    smaller perturbations (``within_budget`` drops an image once it is fooled within the
    budget: from the later targets and restarts, as AutoAttack's reference code does, and
    from the rest of the run, which the reference code does not).

    The first restart starts at ``x0``; each later one at ``x0`` plus a random
    perturbation of norm ``min(smallest found, eps) / 2`` (uniform direction
    scaled to that L-inf norm, or Gaussian scaled to that L2 norm). The attack is
    minimal and called with ``eps = inf``, so the scale is the smallest
    perturbation found so far, or, for an image not yet fooled, half the diameter
    of the box (1 in L-inf, ``sqrt(D)`` in L2) before clipping to [0, 1].

    FAB-T (``n_target_classes = k > 0``) is still untargeted: it runs the targeted
    version, whose only boundary is the one between the true class and a target,
    once for each of the ``k`` classes with the highest clean logits after the
    true one (AutoAttack: 9 targets, 1 restart, 100 steps); any misclassification
    counts. Inside AutoAttack (``clip_targets``) it takes at most ``C - 1`` targets on
    data of ``C`` classes, as the composite does for APGD-T; standalone, ``k`` must be
    below the number of classes.

    Args:
        norm: ``"linf"`` (default) or ``"l2"``.
        steps: iterations per restart and target (default 100).
        restarts: runs per target, the first from the clean image (default 1).
        n_target_classes: 0 (default) for FAB over all classes, k for FAB-T (k + 1 classes).
        clip_targets: run ``min(k, C - 1)`` targets instead of refusing fewer classes.
        within_budget: run at each budget instead of once unbounded, and drop an image once
            it is fooled within the budget: from the rest of the run, the later targets and
            restarts (default False: the minimal-perturbation search, every image through
            every target).
        alpha_max: the largest weight on the step from the clean image (0.1).
        eta: overshoot of both projections (1.05).
        beta: pull-back toward the clean image after a success (0.9).

    Per image it returns the smallest adversarial example found over all steps,
    restarts and targets; images already misclassified, or never fooled, are
    returned unchanged. Untargeted only (FAB-T chooses its own targets); also takes
    the base ``seed`` (used by restarts only) and ``batch_size``.
    """

    minimal: ClassVar[bool] = True

    def __init__(
        self,
        *,
        norm: NormName = "linf",
        steps: Count = 100,
        restarts: Count = 1,
        n_target_classes: Annotated[int, Range(0, whole=True)] = 0,
        alpha_max: Annotated[float, Range(0, 1)] = 0.1,
        eta: Annotated[float, Range(1)] = 1.05,
        beta: Fraction = 0.9,
        clip_targets: bool = False,
        within_budget: bool = False,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.norm = norm  # instance attribute overrides the class default
        self.steps = int(steps)
        self.restarts = int(restarts)
        self.n_target_classes = int(n_target_classes)
        self.clip_targets = bool(clip_targets)
        # FAB-T's k targets are the k most likely classes after the true one
        self.min_classes = 2 if self.clip_targets else max(2, self.n_target_classes + 1)
        self.alpha_max = float(alpha_max)
        self.eta = float(eta)
        self.beta = float(beta)
        self.within_budget = bool(within_budget)
        self.minimal = not self.within_budget  # instance attribute overrides the class's

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        with torch.no_grad():
            logits = model(x)
        num_classes = logits.shape[1]
        n_targets = self.n_target_classes
        if self.clip_targets:
            n_targets = min(n_targets, num_classes - 1)
        elif n_targets >= num_classes:
            raise ValueError(
                f"n_target_classes must be < the number of classes ({num_classes}), "
                f"got {self.n_target_classes}"
            )
        adv = x.clone()
        todo = (logits.argmax(1) == y).nonzero().squeeze(1)
        if len(todo) == 0:
            return adv
        x0, y0 = x[todo], y[todo]
        if n_targets == 0:  # every other class, per image
            rest = torch.arange(num_classes, device=x.device).expand(len(todo), -1)
            runs = [rest[rest != y0.view(-1, 1)].view(len(todo), -1)]
        else:  # one run per target: the k highest clean logits after the true class
            others = logits[todo].scatter(1, y0.view(-1, 1), float("-inf"))
            ranked = others.topk(n_targets, dim=1).indices
            runs = [ranked[:, j : j + 1] for j in range(n_targets)]
        best = torch.full((len(todo),), math.inf, device=x.device)
        best_adv = x0.clone()
        every = torch.arange(len(best), device=x.device)
        for classes in runs:
            for restart in range(self.restarts):
                # within a budget, the images already fooled inside it are done
                left = (best > eps).nonzero().squeeze(1) if self.within_budget else every
                if len(left) == 0:
                    break
                sub_best, sub_adv, x_left = best[left], best_adv[left], x0[left]
                start = x_left if restart == 0 else self._random_start(x_left, sub_best, eps)
                self._descend(model, x_left, y0[left], classes[left], start, sub_best, sub_adv, eps)
                best[left], best_adv[left] = sub_best, sub_adv
        adv[todo] = best_adv
        return adv

    # -- one run ------------------------------------------------------------------------
    def _descend(
        self,
        model: nn.Module,
        x0: Tensor,
        y: Tensor,
        classes: Tensor,
        x1: Tensor,
        best: Tensor,
        best_adv: Tensor,
        eps: float = math.inf,
    ) -> None:
        """``steps`` FAB iterations from ``x1`` against the boundaries between ``y`` and
        ``classes`` (n, m); ``best`` and ``best_adv`` are updated in place. Within a budget,
        an image leaves the run once it is fooled within ``eps`` (its verdict is settled;
        the others' iterates do not depend on it)."""
        rows = torch.arange(len(x0), device=x0.device)  # the images still searched
        xs0, ys, cs = x0, y, classes
        ahead = (-1, *([1] * (x0.dim() - 1)))
        for _ in range(self.steps):
            if self.within_budget:
                left = best[rows] > eps
                if not bool(left.all()):
                    rows, x1 = rows[left], x1[left]
                    if len(rows) == 0:
                        return
                    xs0, ys, cs = x0[rows], y[rows], classes[rows]
            n = len(rows)
            f, w = self._nearest_boundary(model, x1, ys, cs)
            flat0, flat1 = xs0.flatten(1), x1.flatten(1)
            # the hyperplane <w, z> = <w, x1> - f, reached from x1 and from x0
            c1 = -f
            c0 = c1 + (w * (flat1 - flat0)).sum(1)
            d = self._project(torch.cat([flat1, flat0]), torch.cat([w, w]), torch.cat([c1, c0]))
            d1, d2 = d[:n], d[n:]
            a1 = self._size(d1).clamp_min(1e-8)
            a2 = self._size(d2).clamp_min(1e-8)
            alpha = (a1 / (a1 + a2)).clamp(0.0, self.alpha_max).view(-1, 1)
            flat1 = (1 - alpha) * (flat1 + self.eta * d1) + alpha * (flat0 + self.eta * d2)
            x1 = flat1.clamp(0.0, 1.0).view_as(xs0)
            with torch.no_grad():
                fooled = model(x1).argmax(1) != ys
            size = self._size((x1 - xs0).flatten(1))
            better = fooled & (size < best[rows])
            best_adv[rows] = torch.where(better.view(ahead), x1, best_adv[rows])
            best[rows] = torch.where(better, size, best[rows])
            x1 = torch.where(fooled.view(ahead), xs0 + self.beta * (x1 - xs0), x1)

    def _nearest_boundary(
        self, model: nn.Module, x1: Tensor, y: Tensor, classes: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per image, ``f_k - f_y`` (n,) and its input gradient (n, D) for the class ``k``
        among ``classes`` (n, m) whose linearized boundary is closest in the attack's norm.

        One forward and one backward pass per column of ``classes``, each on the batch sum
        of ``f_k - f_y`` (samples do not interact); only the running closest gradient is
        kept, so memory does not grow with the number of classes.
        """
        x1 = x1.detach().requires_grad_(True)
        rows = torch.arange(len(y), device=y.device)
        m = classes.shape[1]
        with torch.enable_grad():
            logits = model(x1)
            own = F.one_hot(y, logits.shape[1]).to(logits.dtype)
            f = logits.detach().gather(1, classes) - logits.detach()[rows, y].view(-1, 1)
            best_dist = torch.full_like(f[:, 0], math.inf)
            best_f, best_w = f[:, 0].clone(), torch.zeros_like(x1.flatten(1))
            for j in range(m):
                mask = F.one_hot(classes[:, j], logits.shape[1]).to(logits.dtype) - own
                (grad,) = torch.autograd.grad(logits, x1, mask, retain_graph=j < m - 1)
                grad = grad.flatten(1)
                dual = grad.abs().sum(1) if self.norm == "linf" else grad.norm(dim=1)
                dist = f[:, j].abs() / (dual + 1e-12)
                closer = dist < best_dist
                best_dist = torch.where(closer, dist, best_dist)
                best_f = torch.where(closer, f[:, j], best_f)
                best_w = torch.where(closer.view(-1, 1), grad, best_w)
        return best_f, best_w

    # -- geometry -----------------------------------------------------------------------
    def _size(self, flat: Tensor) -> Tensor:
        """Per-row norm of ``flat`` (N, D) in the attack's norm."""
        return flat.abs().amax(1) if self.norm == "linf" else flat.norm(dim=1)

    def _project(self, t: Tensor, w: Tensor, c: Tensor) -> Tensor:
        """Per row, the smallest ``d`` (attack norm) with ``<w, d> = c`` and ``t + d`` in
        [0, 1]^D; where no point of the box reaches the hyperplane, the step to the corner
        that comes closest. ``t`` and ``w`` are (N, D), ``c`` is (N,).

        Coordinate ``i`` moves in the direction ``s_i = sign(w_i c)`` that brings
        ``<w, t + d>`` toward the hyperplane, by at most its room ``r_i`` to the box. In
        L-inf, ``d_i = s_i min(lam, r_i)``; in L2 (from the KKT conditions),
        ``d_i = s_i min(lam |w_i|, r_i)``. Either way the progress
        ``sum_i v_i min(lam, k_i)`` (L-inf: ``v = |w|``, ``k = r``; L2: ``v = w^2``,
        ``k = r / |w|``) is piecewise linear and nondecreasing in ``lam``; sorting the
        knees ``k`` gives it at every knee in closed form, and ``lam`` solves the linear
        piece where it reaches ``|c|`` (the last knee when it never does).
        """
        s = torch.sign(w) * torch.sign(c).view(-1, 1)
        room = torch.where(s > 0, 1 - t, t) * (s != 0)
        if self.norm == "linf":
            weight, knee = w.abs(), room
        else:
            weight = w * w
            knee = torch.where(w != 0, room / w.abs().clamp_min(1e-30), torch.zeros_like(room))
        knees, order = knee.sort(dim=1)
        weights = weight.gather(1, order)
        # below[:, j]: the progress of the knees before j, fully used; above[:, j]: the
        # weight of knee j and later, still growing with lam
        below = F.pad((weights * knees).cumsum(1), (1, 0))
        above = F.pad(weights.flip(1).cumsum(1).flip(1), (0, 1))
        reach = below[:, 1:] + knees * above[:, 1:]  # progress at each knee
        need = c.abs().view(-1, 1)
        j = (reach < need).sum(1, keepdim=True)  # knees passed before |c| is reached
        lam = (need - below.gather(1, j)) / above.gather(1, j).clamp_min(1e-30)
        low = F.pad(knees, (1, 0)).gather(1, j)
        high = knees.gather(1, j.clamp(max=knees.shape[1] - 1))
        lam = torch.minimum(torch.maximum(lam, low), high)
        reach_of = lam if self.norm == "linf" else lam * w.abs()
        return s * torch.minimum(reach_of, room)

    def _random_start(self, x0: Tensor, best: Tensor, eps: float) -> Tensor:
        """``x0`` plus a random perturbation of norm ``min(best, eps) / 2``, clipped to
        [0, 1]; images with no bound at all get half the box's diameter."""
        flat = x0.flatten(1)
        diameter = 1.0 if self.norm == "linf" else math.sqrt(flat.shape[1])
        scale = best.clamp(max=eps)
        scale = torch.where(torch.isfinite(scale), scale, torch.full_like(scale, diameter))
        if self.norm == "linf":
            noise = 2 * torch.rand(flat.shape, generator=self.rng, device=x0.device) - 1
        else:
            noise = torch.randn(flat.shape, generator=self.rng, device=x0.device)
        noise = noise / self._size(noise).clamp_min(1e-12).view(-1, 1)
        return (flat + 0.5 * scale.view(-1, 1) * noise).clamp(0.0, 1.0).view_as(x0)
