"""Square Attack, L-inf: a score-based black-box attack by random square updates.

Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020,
https://arxiv.org/abs/1912.00049.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..registry import ATTACKS
from .base import Attack, margin_loss

#: iterations (of the paper's 10,000) after which the square's area fraction p halves
P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@ATTACKS.register("square")
class SquareAttack(Attack):
    """Random search over vertices of the L-inf ball, one square window at a time.

    The search starts from vertical stripes of ``+-eps`` (one random sign per
    column and channel). Each iteration draws a square window at a uniformly
    random position and sets it to ``x + eps * s_c`` with one random sign ``s_c``
    per channel; the candidate is kept if it lowers the margin loss
    ``z_y - max_{i != y} z_i`` (targeted: ``max_{i != t} z_i - z_t``). A sample
    is queried only until it is fooled. The window covers a fraction ``p`` of
    the image, halved on the paper's schedule for 10,000 queries, rescaled to
    ``n_queries``. It only reads the model's logits, under ``torch.no_grad()``.

    Args:
        n_queries: model queries per sample at most, the start counting as one
            (default 1000; the paper uses 10,000). The clean point is also
            evaluated, once, to skip samples already misclassified; that query
            is not counted, as in the authors' code.
        p_init: the window's initial area fraction (default 0.8, the paper's
            value for MNIST).

    ``success_step`` is the number of queries after which a sample was first
    fooled (0: misclassified when clean; -1: never); queries are not iterations,
    so :attr:`~.base.Attack.iterations` stays None. Also takes the base
    ``targeted``, ``seed`` and ``batch_size``; every random draw comes from
    ``self.rng``.
    """

    norm: ClassVar[str] = "linf"
    targeted_supported: ClassVar[bool] = True
    black_box: ClassVar[bool] = True

    def __init__(
        self,
        *,
        n_queries: int = 1000,
        p_init: float = 0.8,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        if n_queries < 1:
            raise ValueError(f"n_queries must be >= 1, got {n_queries}")
        if not 0 < p_init <= 1:
            raise ValueError(f"p_init must be in (0, 1], got {p_init}")
        self.n_queries = int(n_queries)
        self.p_init = float(p_init)

    @torch.no_grad()
    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        labels = target_class if self.targeted else y
        best = x.clone()
        loss = margin_loss(model(x), labels, targeted=self.targeted)
        step = torch.where(loss < 0, 0, -1)
        todo = (step < 0).nonzero().squeeze(1)
        if len(todo) == 0:
            return best, step
        best[todo] = self._stripes(x[todo], eps)
        loss[todo] = margin_loss(model(best[todo]), labels[todo], targeted=self.targeted)
        step[todo[loss[todo] < 0]] = 1
        for i in range(self.n_queries - 1):
            todo = (step < 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            side = self._side(i, x.shape[2], x.shape[3])
            candidate = self._window_update(x[todo], best[todo], eps, side)
            new_loss = margin_loss(model(candidate), labels[todo], targeted=self.targeted)
            improved = new_loss < loss[todo]
            kept = todo[improved]
            best[kept] = candidate[improved]
            loss[kept] = new_loss[improved]
            step[kept[new_loss[improved] < 0]] = i + 2
        return best, step

    def _side(self, i: int, height: int, width: int) -> int:
        """The window's side at iteration ``i``: ``round(sqrt(p * h * w))``, at least 1
        and below the image's smaller side."""
        halvings = sum(i * 10_000 // self.n_queries > t for t in P_HALVINGS)
        p = self.p_init / 2**halvings
        return max(min(round(math.sqrt(p * height * width)), min(height, width) - 1), 1)

    def _signs(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        draws = torch.randint(0, 2, shape, generator=self.rng, device=like.device)
        return (2 * draws - 1).to(like.dtype)

    def _stripes(self, x: Tensor, eps: float) -> Tensor:
        """The start: ``x + eps * s`` with one random sign per column and channel."""
        n, c, _, w = x.shape
        return (x + eps * self._signs((n, c, 1, w), x)).clamp(0.0, 1.0)

    def _window_update(self, x: Tensor, best: Tensor, eps: float, side: int) -> Tensor:
        """``best`` with one random square window per sample set to ``x + eps * s_c``.

        Where that would leave the image unchanged, the signs are drawn again from
        the other ``2^c - 1`` sign patterns (the authors redraw until the image
        changes), so no query is spent on an unchanged image.
        """
        n, c, h, w = x.shape
        window = self._random_windows(n, h, w, side, x.device)
        signs = self._signs((n, c, 1, 1), x)
        candidate = torch.where(window, (x + eps * signs).clamp(0.0, 1.0), best)
        same = (candidate - best).flatten(1).abs().amax(1) < 1e-7
        if same.any():
            pattern = torch.randint(
                1, 2**c, (int(same.sum()), 1), generator=self.rng, device=x.device
            )
            flips = (pattern >> torch.arange(c, device=x.device)) & 1
            signs[same] *= (1 - 2 * flips).to(x.dtype).view(-1, c, 1, 1)
            candidate = torch.where(window, (x + eps * signs).clamp(0.0, 1.0), best)
        return candidate

    def _random_windows(self, n: int, h: int, w: int, side: int, device: torch.device) -> Tensor:
        """Bool (n, 1, h, w): one ``side x side`` square per sample, uniformly placed."""
        top = torch.randint(0, h - side + 1, (n, 1), generator=self.rng, device=device)
        left = torch.randint(0, w - side + 1, (n, 1), generator=self.rng, device=device)
        rows = torch.arange(h, device=device).view(1, -1)
        cols = torch.arange(w, device=device).view(1, -1)
        in_rows = (rows >= top) & (rows < top + side)
        in_cols = (cols >= left) & (cols < left + side)
        return in_rows[:, None, :, None] & in_cols[:, None, None, :]
