"""ART's evasion attacks under our Attack base, as ``art:<ClassName>`` in ATTACKS.

``ATTACKS.create("art:ProjectedGradientDescent", max_iter=10, rel_stepsize=0.1)``
runs ``art.attacks.evasion.ProjectedGradientDescent`` on our model. Besides the
conventions every adapter follows (see :mod:`.adapter_base`):

- ``norm`` is passed on as ART's ``norm`` (``np.inf`` or 2) where the class takes
  one. Otherwise it is the class's own norm (linf for BasicIterativeMethod and
  CarliniLInfMethod, l2 for the rest) and only names the ball the base projects onto.
- eps: a class that takes ``eps`` gets each budget; its ``eps_step`` is
  ``rel_stepsize * eps``, by default with ART's own ratio of default step to
  default eps (1/3 for PGD: 0.1 at eps 0.3), so a small eps never gets a step
  larger than itself. Classes without ``eps`` are ``minimal``.
- ``targeted`` where the class has a ``targeted`` parameter.
- ``batch_size`` is also ART's (but SimBA's, which only runs one image at a time);
  ART's ``verbose`` defaults to False.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..bounds import Count, Positive, Seed
from ..contract.norms import NormName
from ..errors import UserError
from ..registry import ATTACKS
from .adapter_base import (
    BASE_KWARGS,
    LibraryAttack,
    check_params,
    global_rngs_seeded,
    init_parameters,
    library_errors,
    on_device,
    unknown_name,
)
from .base import Attack

ART_NORMS: dict[str, float] = {"linf": math.inf, "l2": 2}
ART_LINF_WITHOUT_NORM = frozenset({"BasicIterativeMethod", "CarliniLInfMethod"})
ART_BLACK_BOX = frozenset(
    {"BoundaryAttack", "GeoDA", "HopSkipJump", "PixelAttack", "SignOPTAttack", "SimBA",
     "SquareAttack", "ThresholdAttack", "ZooAttack"}
)  # fmt: skip
ART_OWNED = frozenset({"eps", "eps_step", "targeted", "batch_size", "norm"})
ART_ONE_AT_A_TIME = frozenset({"SimBA"})


def resolve_art(name: str) -> Callable[..., Attack]:
    """The factory of ``art:name``; UserError for a name that is not an ART evasion attack."""
    import art.attacks
    from art.attacks import EvasionAttack

    evasion = {
        n: c
        for n, c in vars(art.attacks.evasion).items()
        if inspect.isclass(c) and issubclass(c, EvasionAttack) and not inspect.isabstract(c)
    }
    if name not in evasion:
        for kind in ("poisoning", "extraction", "inference"):
            if inspect.isclass(getattr(getattr(art.attacks, kind), name, None)):
                raise UserError(
                    f"art:{name} is an ART {kind} attack; only evasion attacks "
                    "(art.attacks.evasion) run here"
                )
        raise unknown_name("art", name, evasion)
    return functools.partial(ArtAttack, evasion[name])


ATTACKS.add_namespace(
    "art", resolve_art, about="any ART evasion attack, e.g. art:ProjectedGradientDescent"
)


class Float32Input(nn.Module):
    """Casts inputs to float32: ART's decision-based attacks (Boundary, HopSkipJump)
    query the model with float64 arrays."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.float())


class ArtAttack(LibraryAttack):
    """An ART evasion attack (``art:<ClassName>``) on our model; see the module docstring."""

    def __init__(
        self,
        cls: type,
        *,
        norm: NormName | None = None,
        rel_stepsize: Positive | None = None,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
        **params: Any,
    ) -> None:
        label = f"art:{cls.__name__}"
        signature = init_parameters(cls, skip_first=True)
        accepted = (set(signature) - ART_OWNED) | set(BASE_KWARGS)
        if "eps_step" in signature:
            accepted.add("rel_stepsize")
        hints = {
            "eps": "eps is the suite's budget ([eval] eps), not an attack parameter",
            "eps_step": "set the step relative to eps with rel_stepsize",
        }
        check_params(label, params, accepted, hints)
        if rel_stepsize is not None and "rel_stepsize" not in accepted:
            raise ValueError(f"{label} has no parameter 'rel_stepsize' (it takes no eps_step)")
        self.cls = cls
        self.takes_eps = "eps" in signature
        self.takes_norm = "norm" in signature
        self.targeted_supported = "targeted" in signature
        self.minimal = not self.takes_eps
        self.black_box = cls.__name__ in ART_BLACK_BOX
        self.norm = norm or self.default_norm(label, signature)
        self.rel_stepsize = rel_stepsize or default_rel_stepsize(signature)
        super().__init__(label, targeted=targeted, seed=seed, batch_size=batch_size)
        self.params = dict(params)
        if "verbose" in signature:
            self.params.setdefault("verbose", False)
        self.signature = signature
        # ART checks its values in the constructor: build once on a probe estimator
        with torch.random.fork_rng(devices=[]):  # leave the global stream alone
            probe = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        self.build(self.estimator(probe, (3, 8, 8), 10, torch.device("cpu")), eps=0.3)

    def default_norm(self, label: str, signature: Mapping[str, inspect.Parameter]) -> str:
        """The norm of the class when the suite names none."""
        if not self.takes_norm:
            return "linf" if self.cls.__name__ in ART_LINF_WITHOUT_NORM else "l2"
        default = signature["norm"].default
        for name, value in ART_NORMS.items():
            if default == value or str(default) == str(value):
                return name
        raise ValueError(f"{label}: ART's default norm is {default!r}; set norm = 'linf' or 'l2'")

    def estimator(
        self, model: nn.Module, shape: tuple[int, ...], classes: int, device: torch.device
    ) -> Any:
        """ART's PyTorchClassifier around ``model`` (inputs in [0, 1], cross-entropy)."""
        from art.estimators.classification import PyTorchClassifier

        with on_device(device):
            return PyTorchClassifier(
                model=Float32Input(model),
                loss=nn.CrossEntropyLoss(),
                input_shape=shape,
                nb_classes=classes,
                clip_values=(0.0, 1.0),
                device_type="gpu" if device.type == "cuda" else "cpu",
            )

    def build(self, estimator: Any, eps: float) -> Any:
        """The ART attack on ``estimator`` at budget ``eps``; ValueError if ART refuses."""
        kwargs = dict(self.params)
        kwargs["targeted"] = self.targeted
        if self.cls.__name__ not in ART_ONE_AT_A_TIME:
            kwargs["batch_size"] = self.batch_size
        kwargs = {k: v for k, v in kwargs.items() if k in self.signature}
        if self.takes_norm:
            kwargs["norm"] = ART_NORMS[self.norm]
        if self.takes_eps:
            kwargs["eps"] = eps
            if "eps_step" in self.signature:
                kwargs["eps_step"] = self.rel_stepsize * eps
        with library_errors(self.label, building=True):
            return self.cls(estimator, **kwargs)

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        with torch.no_grad():
            classes = model(x[:1]).shape[1]
        estimator = self.estimator(model, tuple(x.shape[1:]), classes, x.device)
        attack = self.build(estimator, eps)
        labels = (target_class if self.targeted else y).cpu().numpy()
        one_hot = np.eye(classes, dtype=np.float32)[labels]
        with (
            global_rngs_seeded(self.batch_seed(), x.device),
            library_errors(self.label, building=False),
        ):
            adv = attack.generate(x=x.cpu().numpy(), y=one_hot)
        return torch.as_tensor(adv, dtype=x.dtype, device=x.device)


def default_rel_stepsize(signature: Mapping[str, inspect.Parameter]) -> float:
    """ART's default eps_step over its default eps (1.0 when either is missing)."""
    eps, step = signature.get("eps"), signature.get("eps_step")
    if eps is None or step is None:
        return 1.0
    try:
        return float(step.default) / float(eps.default)
    except (TypeError, ValueError, ZeroDivisionError):
        return 1.0
