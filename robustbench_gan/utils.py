"""Small helpers shared across stages: seeding, batching, counting a model's passes."""

from __future__ import annotations

import contextlib
import inspect
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private random stream, so one component's draws never shift another's."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU if it has none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def labels_of(model: torch.nn.Module, x: Tensor) -> Tensor:
    """The model's predicted labels: its ``predict_labels`` if it has one (a voting
    ensemble), else the argmax of its output."""
    vote = getattr(model, "predict_labels", None)
    return vote(x) if vote is not None else model(x).argmax(1)


@contextlib.contextmanager
def modes_kept(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Afterwards every submodule's own ``training`` flag is as it was before the body (a
    wrapper in train mode around a pretrained net in eval mode, or mixed modes, come back
    exactly), even if the body raised."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        yield model
    finally:
        for module, flag in flags:
            if module.training != flag:
                module.training = flag


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model.eval()`` for the duration, every submodule's mode restored after
    (:func:`modes_kept`)."""
    with modes_kept(model):
        model.eval()
        yield model


@torch.no_grad()
def predict(model: torch.nn.Module, x: Tensor, *, batch_size: int = 512) -> Tensor:
    """Predicted labels of ``model`` on ``x`` (eval mode, every module's mode restored after)."""
    with eval_mode(model):
        device = model_device(model)
        out = [labels_of(model, x[s].to(device)).cpu() for s in batch_slices(len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def takes_keyword(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory``'s signature names the keyword argument ``name`` (``**kwargs``
    does not count: the runner passes only what a plugin asks for)."""
    try:
        parameter = inspect.signature(factory).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


class PassCounter:
    """Counts the rows through a model's forward and the rows whose gradient comes back
    through its output, by a forward hook on the top-level module: any code that calls
    ``model(x)`` is counted (adapters, black-box queries, composites). NaN if the model
    takes no hooks."""

    def __init__(self) -> None:
        self.forward = 0.0
        self.backward = 0.0

    @contextlib.contextmanager
    def watching(self, model: torch.nn.Module) -> Iterator[PassCounter]:
        handle: RemovableHandle | None = None
        try:
            handle = model.register_forward_hook(self._on_forward, with_kwargs=True)
        except (AttributeError, RuntimeError, TypeError):  # a module that takes no hooks
            self.forward = self.backward = math.nan
        try:
            yield self
        finally:
            if handle is not None:
                handle.remove()

    def _on_forward(self, module: object, args: tuple, kwargs: dict, output: object) -> None:
        inputs = [*args, *kwargs.values()]
        if inputs and isinstance(inputs[0], Tensor) and inputs[0].dim() > 0:
            self.forward += inputs[0].shape[0]
        if isinstance(output, Tensor) and output.requires_grad:
            output.register_hook(self._on_backward)

    def _on_backward(self, grad: Tensor) -> None:
        self.backward += grad.shape[0]


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def wilson(correct: float, total: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / total``:
    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``; NaNs without images."""
    if not total or math.isnan(total) or math.isnan(correct):
        return math.nan, math.nan
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct <= 0 else max(0.0, centre - half)  # exact at the ends
    high = 1.0 if correct >= total else min(1.0, centre + half)
    return low, high
