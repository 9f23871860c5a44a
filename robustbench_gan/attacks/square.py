"""Square Attack, L-inf: a score-based black-box attack by random square updates.

Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
black-box adversarial attack via random search", ECCV 2020,
https://arxiv.org/abs/1912.00049. The options that AutoAttack's run of it differs by
follow its reference code (Croce & Hein, ICML 2020, https://arxiv.org/abs/2003.01690,
github.com/fra31/auto-attack, ``autoattack/square.py``).
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import torch
from torch import Tensor, nn

from ..bounds import Count, OneOf, Range, Seed
from ..registry import ATTACKS
from .base import Attack, margin_loss

#: iterations after which the square's area fraction p halves: of the paper's 10,000
#: (rescaled to ``n_queries``), or the iteration index itself (``rescale_schedule=False``)
P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
WINDOW_PER = ("sample", "batch")
#: AutoAttack's Square (``AutoAttack(...).square``: p_init 0.8, 5,000 queries,
#: ``resc_schedule=False``, one window and sign pattern per iteration, n_queries
#: iterations after the start, the corner drawn below h - s)
AUTOATTACK_SETTINGS = {
    "p_init": 0.8,
    "rescale_schedule": False,
    "window_per": "batch",
    "start_counts": False,
    "edge_windows": False,
}


@ATTACKS.register("square")
class SquareAttack(Attack):
    """Random search over vertices of the L-inf ball, one square window at a time.

    The search starts from vertical stripes of ``+-eps`` (one random sign per
    column and channel). Each iteration draws a square window and sets it to
    ``x + eps * s_c`` with one random sign ``s_c`` per channel; the candidate is kept
    if it lowers the margin loss ``z_y - max_{i != y} z_i`` (targeted:
    ``max_{i != t} z_i - z_t``). A sample is queried only until it is fooled. The
    window covers a fraction ``p`` of the image (side ``round(sqrt(p h w))``), halved
    after the iterations in :data:`P_HALVINGS`. It only reads the model's logits, under
    ``torch.no_grad()``.

    Args:
        n_queries: the query budget per sample (default 1000; the paper uses 10,000,
            AutoAttack 5,000). The clean point is also evaluated, once, to skip
            samples already misclassified; that query is not counted, as in the
            authors' code.
        p_init: the window's initial area fraction (default 0.8, the paper's value
            for MNIST and AutoAttack's).
        rescale_schedule: True (default, the paper's code): p halves at the
            iterations of :data:`P_HALVINGS` taken of 10,000 and rescaled to
            ``n_queries``, so p ends at ``p_init / 512``. False (AutoAttack's
            ``resc_schedule=False``): they are compared with the raw iteration
            index, so over 5,000 iterations p ends at ``p_init / 128``.
        window_per: ``"sample"`` (default, the paper's code): each sample gets its own
            window position and signs, and where they would leave its image
            unchanged the signs are drawn again from the other ``2^c - 1`` patterns
            (the paper's code redraws until the image changes), so no query is spent
            on an unchanged image. ``"batch"`` (AutoAttack's code): one position and
            one sign pattern per iteration for every sample still attacked, never
            redrawn; its draws are uniform floats in the reference's order (the
            stripes, then per iteration the corner's row, its column, the signs),
            so on the CPU the same seed gives the reference's draws.
        start_counts: True (default): the stripes are the first of ``n_queries``
            queries, ``n_queries - 1`` window iterations follow (the paper's code).
            False (AutoAttack's code): ``n_queries`` window iterations follow the
            start, up to ``n_queries + 1`` queries per sample.
        edge_windows: True (default): the window's corner is uniform over every
            position, and its side is at most the image's smaller side less one.
            False (AutoAttack's code): the corner is drawn from ``0 .. h - s - 1``
            (the reference's ``random_int(0, h - s)``; 0 where the window spans the
            image), so a window never touches the last row or column, and the side
            may reach the image's.

    :data:`AUTOATTACK_SETTINGS` holds AutoAttack's values of the last five; the
    ``autoattack`` preset passes them. ``success_step`` is the number of queries
    after which a sample was first fooled (0: misclassified when clean; 1: by the
    stripes; -1: never); queries are not iterations, so
    :attr:`~.base.Attack.iterations` stays None. Also takes the base ``targeted``,
    ``seed`` and ``batch_size``; every random draw comes from ``self.rng``.
    """

    norm: ClassVar[str] = "linf"
    targeted_supported: ClassVar[bool] = True
    black_box: ClassVar[bool] = True

    def __init__(
        self,
        *,
        n_queries: Count = 1000,
        p_init: Annotated[float, Range(0, 1, open_low=True)] = 0.8,
        rescale_schedule: bool = True,
        window_per: Annotated[str, OneOf(WINDOW_PER)] = "sample",
        start_counts: bool = True,
        edge_windows: bool = True,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)
        self.n_queries = int(n_queries)
        self.p_init = float(p_init)
        self.rescale_schedule = rescale_schedule
        self.window_per = window_per
        self.start_counts = start_counts
        self.edge_windows = edge_windows

    @property
    def window_iterations(self) -> int:
        """Window iterations after the start: ``n_queries - 1``, or ``n_queries`` when
        the start is not counted (``start_counts=False``)."""
        return self.n_queries - 1 if self.start_counts else self.n_queries

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
        update = self._window_update if self.window_per == "sample" else self._batch_update
        for i in range(self.window_iterations):
            todo = (step < 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            side = self.side(i, x.shape[2], x.shape[3])
            candidate = update(x[todo], best[todo], eps, side)
            new_loss = margin_loss(model(candidate), labels[todo], targeted=self.targeted)
            improved = new_loss < loss[todo]
            kept = todo[improved]
            best[kept] = candidate[improved]
            loss[kept] = new_loss[improved]
            step[kept[new_loss[improved] < 0]] = i + 2
        return best, step

    def side(self, i: int, height: int, width: int) -> int:
        """The window's side at window iteration ``i`` (0 after the start):
        ``round(sqrt(p * h * w))``, at least 1 and at most the image's smaller side
        (less one with ``edge_windows``)."""
        it = i * 10_000 // self.n_queries if self.rescale_schedule else i
        halvings = sum(it > t for t in P_HALVINGS)
        p = self.p_init / 2**halvings
        cap = min(height, width) - (1 if self.edge_windows else 0)
        return max(min(round(math.sqrt(p * height * width)), cap), 1)

    def _signs(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        if self.window_per == "batch":  # from floats, as AutoAttack's code draws them
            draws = torch.rand(shape, generator=self.rng, device=like.device)
            return torch.where(draws < 0.5, -1.0, 1.0).to(like.dtype)
        draws = torch.randint(0, 2, shape, generator=self.rng, device=like.device)
        return (2 * draws - 1).to(like.dtype)

    def _stripes(self, x: Tensor, eps: float) -> Tensor:
        """The start: ``x + eps * s`` with one random sign per column and channel."""
        n, c, _, w = x.shape
        return (x + eps * self._signs((n, c, 1, w), x)).clamp(0.0, 1.0)

    def _corners(self, n: int, h: int, w: int, side: int, device: torch.device) -> Tensor:
        """(n, 2) top-left corners: uniform over ``0 .. h - side`` (``0 .. w - side``), or
        over ``0 .. h - side - 1`` without ``edge_windows`` (0 for a full-size window)."""
        spans = torch.tensor([h - side, w - side], device=device)
        if self.edge_windows:
            spans = spans + 1
        if self.window_per == "batch":  # row, then column: floats scaled and truncated
            draws = torch.rand((2,), generator=self.rng, device=device)
            return (draws * spans).long().clamp_max((spans - 1).clamp_min(0)).expand(n, 2)
        spans = spans.clamp_min(1).tolist()
        top = torch.randint(0, spans[0], (n, 1), generator=self.rng, device=device)
        left = torch.randint(0, spans[1], (n, 1), generator=self.rng, device=device)
        return torch.cat([top, left], 1)

    def _windows(self, corners: Tensor, h: int, w: int, side: int) -> Tensor:
        """Bool (n, 1, h, w): the ``side x side`` square at each corner."""
        rows = torch.arange(h, device=corners.device).view(1, -1)
        cols = torch.arange(w, device=corners.device).view(1, -1)
        top, left = corners[:, :1], corners[:, 1:]
        in_rows = (rows >= top) & (rows < top + side)
        in_cols = (cols >= left) & (cols < left + side)
        return in_rows[:, None, :, None] & in_cols[:, None, None, :]

    def _window_update(self, x: Tensor, best: Tensor, eps: float, side: int) -> Tensor:
        """``best`` with one random square window per sample set to ``x + eps * s_c``,
        the signs drawn again where that would leave the image unchanged."""
        n, c, h, w = x.shape
        window = self._windows(self._corners(n, h, w, side, x.device), h, w, side)
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

    def _batch_update(self, x: Tensor, best: Tensor, eps: float, side: int) -> Tensor:
        """``best`` with one square window, at one place and with one sign per channel
        for the whole batch, moved by ``2 eps s_c`` and projected back onto the ball and
        [0, 1]: a window coordinate becomes ``x + eps * s_c`` (clipped), as in AutoAttack."""
        n, c, h, w = x.shape
        window = self._windows(self._corners(1, h, w, side, x.device), h, w, side)
        signs = self._signs((1, c, 1, 1), x)
        moved = torch.minimum(torch.maximum(best + 2 * eps * signs, x - eps), x + eps)
        return torch.where(window, moved.clamp(0.0, 1.0), best)
