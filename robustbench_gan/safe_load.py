"""The one way a file a user gives is read with ``torch.load``: tensors and plain containers.

Every ``torch.load`` of a user's file (weights, robustbench's model files, checkpoints,
``rbg verify``'s adversarial examples, Inception weights) goes through ``load_tensors``:
``weights_only=True`` on the CPU, torch's warnings kept off stderr, failures as one-line
UserErrors. On torch older than 2.6 ``weights_only=True`` can be bypassed
(CVE-2025-32434), so there the file is refused before torch opens it. Code that is not
ours and calls ``torch.load`` itself (robustbench, and torch.hub under it) runs inside
``weights_only_torch_load()``, which routes those calls here too.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

SAFE_TORCH = (2, 6)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def torch_version() -> str:
    """The version of the torch that reads the files (tests replace it)."""
    return str(torch.__version__)


def check_torch(path: str | Path) -> None:
    """A one-line UserError about ``path`` if this torch's weights_only loader is unsafe."""
    version = torch_version()
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < SAFE_TORCH:
        raise UserError(
            f"{path}: torch {version} cannot read untrusted .pt files safely "
            "(CVE-2025-32434): use torch >= 2.6"
        )


class UnreadableFile(UserError):
    """``torch.load`` with ``weights_only=True`` failed; ``reason`` says why, in one line."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: torch.load with weights_only=True cannot read it ({reason})")
        self.path = path
        self.reason = reason


def load_tensors(source: str | Path | bytes, *, path: str | Path | None = None) -> Any:
    """``torch.load(source, map_location="cpu", weights_only=True)`` after ``check_torch``;
    ``source`` is a file or its bytes (``path`` names it in messages). Warnings torch gives
    while reading are dropped (the error, if any, says what matters); a failure is an
    ``UnreadableFile`` naming the file."""
    name = path if path is not None else ("<bytes>" if isinstance(source, bytes) else source)
    check_torch(name)
    opened: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # torch.serialization.load, not torch.load: the latter may be our own wrapper
            return torch.serialization.load(opened, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnreadableFile(name, reason_of(exc)) from None


def reason_of(exc: BaseException) -> str:
    """Why torch could not load a file, in one line: the global a pickle would need (the
    usual case: a pickled module or object), else the first line torch gave."""
    text = ANSI.sub("", str(exc))
    needs = re.search(r"GLOBAL (\S+) was not an allowed global", text)
    if needs:
        return f"it pickles {needs[1]}, which weights_only=True does not allow"
    detail = text.partition("WeightsUnpickler error:")[2].strip()
    if detail:
        return f"{type(exc).__name__}: {detail.splitlines()[0].strip()}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """Within it, ``torch.load`` is ``load_tensors`` whatever its caller asks for (robustbench
    calls ``torch.load`` without ``weights_only``, torch.hub with ``weights_only=False``):
    code that is not ours reads a user's file as tensors or not at all. The patch is
    process-wide while it lasts, and only ever makes a load stricter."""
    original = torch.load

    def load(f: Any, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
        path = isinstance(f, (str, os.PathLike))
        return load_tensors(f if path else f.read(), path=f if path else _name(f))

    torch.load = load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original


def _name(f: Any) -> str:
    return str(getattr(f, "name", "<file>"))
