"""What the ``art:`` and ``foolbox:`` adapters share: checks, error translation, seeding.

The adapters run a peer library's attack under our :class:`~.base.Attack`, so the
base still projects, clips and scores the result. The suite's keyword arguments go
to the library's constructor; the adapter owns the ones that describe the budget
and the run:

- ``norm``: ``"linf"`` or ``"l2"`` (declared :data:`~robustbench_gan.contract.norms.NormName`, so
  checked by the base); how it reaches the library is the adapter's (see :mod:`.art_adapter`
  and :mod:`.foolbox_adapter`).
- eps: the suite's budget, never a constructor argument. Attacks without a budget
  are ``minimal``: run once, unbounded, and cut to every budget by the base.
- ``targeted`` where the library's attack supports it.
- ``batch_size`` is the base's (and passed on where the library takes one).
- ``seed``: ART draws from NumPy's global stream and foolbox from torch's, so
  every batch runs with both global streams seeded from the attack's own
  generator (reset per budget by the base); their previous states are restored
  afterwards, so the caller's global RNGs are left as they were.

ART and foolbox are imported only when such a name is resolved.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .base import Attack

#: keyword arguments every adapter takes for the base rather than the library
BASE_KWARGS = ("norm", "targeted", "seed", "batch_size")


def unknown_name(library: str, name: str, known: Mapping[str, Any]) -> UserError:
    """A UserError for ``library:name`` that suggests the closest known names."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(f'{library}:{c}' for c in close)}?" if close else ""
    return UserError(f"unknown attack {library}:{name}{hint}")


def check_params(label: str, params: Mapping[str, Any], accepted: set[str], hints: dict) -> None:
    """Unknown keyword arguments are ValueErrors naming the accepted ones."""
    for key in params:
        if key in hints:
            raise ValueError(f"{label}: {hints[key]}")
        if key not in accepted:
            raise ValueError(
                f"{label} has no parameter {key!r} (accepted: {', '.join(sorted(accepted))})"
            )


@contextlib.contextmanager
def library_errors(label: str, *, building: bool) -> Iterator[None]:
    """The library's refusals as one-line ValueErrors naming the attack.

    While building, any exception is a refusal of the configuration; while
    running, only an estimator ART cannot attack or a missing optional package.
    """
    try:
        yield
    except ImportError as exc:
        raise ValueError(f"{label} needs the package {exc.name or exc}, not installed") from None
    except TypeError as exc:
        if hasattr(exc, "class_expected_list"):  # ART's EstimatorError
            raise ValueError(
                f"{label} cannot attack a PyTorch classifier (it needs {art_needs(exc)})"
            ) from None
        if building:
            raise ValueError(f"{label}: {exc}") from None
        raise
    except Exception as exc:
        if building:
            raise ValueError(f"{label} cannot be built: {type(exc).__name__}: {exc}") from None
        raise


def art_needs(exc: TypeError) -> str:
    """The estimator classes an ART EstimatorError asks for (a tuple means any of them)."""
    return " and ".join(
        " or ".join(c.__name__ for c in (group if isinstance(group, tuple) else (group,)))
        for group in exc.class_expected_list  # type: ignore[attr-defined]
    )


@contextlib.contextmanager
def global_rngs_seeded(seed: int, device: torch.device) -> Iterator[None]:
    """NumPy's and torch's global streams seeded for the block, then restored."""
    numpy_state = np.random.get_state()
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), on_device(device):
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)  # the current device only: the one forked
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """Make ``device`` the current CUDA device (libraries pick "the" GPU by that)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def init_parameters(cls: type, skip_first: bool) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls.__init__`` (minus the estimator for ART)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if skip_first:
        params = params[1:]
    return {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


class LibraryAttack(Attack):
    """Shared by the adapters: the ``library:Name`` label and per-batch seeds."""

    def __init__(self, label: str, *, targeted: bool, seed: int, batch_size: int) -> None:
        self.label = label
        if targeted and not self.targeted_supported:
            raise ValueError(f"{label} does not support targeted attacks")
        super().__init__(targeted=targeted, seed=seed, batch_size=batch_size)

    def __repr__(self) -> str:
        return f"{self.label}(norm={self.norm!r}, targeted={self.targeted}, seed={self.seed})"

    def batch_seed(self) -> int:
        """A seed for the library's global RNGs, drawn from our per-budget generator."""
        return int(torch.randint(2**31 - 1, (1,), generator=self.rng, device=self.rng.device))
