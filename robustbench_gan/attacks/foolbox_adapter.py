"""foolbox 3's attacks under our Attack base, as ``foolbox:<Name>`` in ATTACKS.

``ATTACKS.create("foolbox:LinfPGD", steps=10)`` runs ``foolbox.attacks.LinfPGD`` on
our model. Besides the conventions every adapter follows (see :mod:`.adapter_base`):

- ``norm`` is passed on as foolbox's ``distance`` where the class takes one;
  otherwise the attack's own distance is the norm (``norm`` may only agree with it).
- eps: fixed-epsilon attacks get ``epsilons=eps`` and take ``rel_stepsize``
  themselves; MinimizationAttack subclasses are ``minimal``.
- ``targeted`` where TargetedMisclassification is among the criteria the
  attack's ``run`` accepts.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ..bounds import Count, Seed
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
    unknown_name,
)
from .base import Attack

FOOLBOX_BLACK_BOX_MODULES = frozenset(
    {"additive_noise", "binarization", "blended_noise", "blur", "boundary_attack", "contrast",
     "contrast_min", "dataset_attack", "gen_attack", "hop_skip_jump", "inversion", "pointwise",
     "saltandpepper"}
)  # fmt: skip


def resolve_foolbox(name: str) -> Callable[..., Attack]:
    """The factory of ``foolbox:name``; UserError for a name foolbox does not have."""
    import foolbox.attacks as fa

    attacks = {
        n: c
        for n, c in vars(fa).items()
        if inspect.isclass(c) and issubclass(c, fa.base.Attack) and not inspect.isabstract(c)
    }
    if name not in attacks:
        raise unknown_name("foolbox", name, attacks)
    cls = attacks[name]
    if not issubclass(cls, (fa.base.FixedEpsilonAttack, fa.base.MinimizationAttack)):
        raise UserError(
            f"foolbox:{name} is neither a fixed-epsilon nor a minimization attack; "
            "it has no perturbation budget to evaluate"
        )
    return functools.partial(FoolboxAttack, cls, name)


ATTACKS.add_namespace(
    "foolbox", resolve_foolbox, about="any foolbox 3 attack, e.g. foolbox:LinfPGD"
)


class FoolboxAttack(LibraryAttack):
    """A foolbox 3 attack (``foolbox:<Name>``) on our model; see the module docstring."""

    def __init__(
        self,
        cls: type,
        name: str,
        *,
        norm: NormName | None = None,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
        **params: Any,
    ) -> None:
        import foolbox as fb

        label = f"foolbox:{name}"
        signature = init_parameters(cls, skip_first=False)
        hints = {
            "distance": "set the norm with norm = 'linf' or 'l2'",
            "epsilons": "epsilons are the suite's budgets ([eval] eps)",
        }
        accepted = (set(signature) - {"distance"}) | set(BASE_KWARGS)
        check_params(label, params, accepted, hints)
        # foolbox annotates the criteria an attack's run() accepts
        criteria = inspect.signature(cls.run).parameters["criterion"].annotation
        self.targeted_supported = "TargetedMisclassification" in str(criteria)
        if criteria is fb.criteria.TargetedMisclassification and not targeted:
            raise ValueError(f"{label} only runs targeted; set targeted = true")
        self.minimal = issubclass(cls, fb.attacks.base.MinimizationAttack)
        self.black_box = cls.__module__.rsplit(".", 1)[-1] in FOOLBOX_BLACK_BOX_MODULES
        if "distance" in signature:
            params["distance"] = getattr(fb.distances, norm or "l2")
        with library_errors(label, building=True):
            self.attack = cls(**params)
        self.norm = self.attack_norm(label, norm)
        super().__init__(label, targeted=targeted, seed=seed, batch_size=batch_size)

    def attack_norm(self, label: str, norm: str | None) -> str:
        """The norm of the foolbox attack's distance; ``norm`` may only agree with it,
        except for a minimization attack in another norm (L0, L1), cut in ``norm``."""
        # getattr with a default: PointwiseAttack's distance property is broken
        p = getattr(getattr(self.attack, "distance", None), "p", None)
        own = {math.inf: "linf", 2: "l2"}.get(p)
        if own is None and not self.minimal:
            raise ValueError(f"{label} bounds the L{p} norm; only linf and l2 are supported")
        if norm is not None and own is not None and norm != own:
            raise ValueError(f"{label} bounds the {own} norm; norm = {norm!r} contradicts it")
        return own or norm or "l2"

    def perturb(
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target_class: Tensor | None
    ) -> Tensor:
        import foolbox as fb

        fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0), device=x.device)
        if self.targeted:
            criterion = fb.criteria.TargetedMisclassification(target_class)
        else:
            criterion = fb.criteria.Misclassification(y)
        # epsilons=None: a minimization attack's unclipped result
        epsilons = None if self.minimal else eps
        with global_rngs_seeded(self.batch_seed(), x.device):
            _, clipped, _ = self.attack(fmodel, x, criterion, epsilons=epsilons)
        return clipped
