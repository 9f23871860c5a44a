"""Small helpers the kinds of evaluation share: shares of boolean masks, packed per-image
vectors, weights as bytes, a translating generator's domains."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from ..checkpoint import tensors_to_bytes
from ..registry import GENERATORS
from ..render.format import safe_name


def share(mask: Tensor, of: Tensor | None = None) -> float:
    """The share of True in ``mask`` (among the True of ``of``), as an exact double."""
    if of is not None:
        return int((mask & of).sum()) / max(int(of.sum()), 1)
    return int(mask.sum()) / max(len(mask), 1)


def bits(mask: Tensor) -> str:
    """A boolean vector as a compact '0101...' string (JSON friendly)."""
    return "".join("1" if v else "0" for v in mask.tolist())


def unbits(text: str) -> np.ndarray:
    """The boolean vector of a '0101...' string."""
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def pack(values: Tensor | np.ndarray, dtype: str) -> str:
    """A per-image vector as compact JSON text: ``"<dtype>:<base64 of little-endian bytes>"``
    (``dtype`` such as ``"<i2"`` for class indices, ``"<f4"`` for norms)."""
    array = np.ascontiguousarray(np.asarray(values), dtype=np.dtype(dtype))
    return f"{dtype}:{base64.b64encode(array.tobytes()).decode()}"


def unpack(text: str) -> np.ndarray:
    """The vector ``pack`` wrote."""
    dtype, _, data = text.partition(":")
    return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype))


def artifact_pngs(
    cells: Mapping[Any, Any], artifact: str, folder: Path, prefix: str
) -> dict[str, Path]:
    """Write the PNG artifact ``artifact`` of each finished cell (keyed by a label) as
    ``folder/<prefix><label>.png``; returns plot name -> path."""
    made = {}
    for label, finished in cells.items():
        name = f"{prefix}{safe_name(label)}"
        path = folder / f"{name}.png"
        path.write_bytes(finished.artifacts[artifact])
        made[name] = path
    return made


def state_bytes(module: nn.Module) -> bytes:
    """The module's weights and buffers, on the CPU, serialized for the store."""
    return tensors_to_bytes({k: v.detach().cpu() for k, v in module.state_dict().items()})


def declared_domains(family: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The domains a generator entry (registry name and parameters) translates into, from
    its factory's ``translation_domains(params)``; none for a sampler, whose factory does
    not declare ``translates_domains = True``."""
    factory = GENERATORS.get(family)
    if not getattr(factory, "translates_domains", False):
        return ()
    declared = getattr(factory, "translation_domains", None)
    if declared is None:
        raise TypeError(f"generator {family!r} translates domains but declares none")
    return tuple(declared(dict(params)))
