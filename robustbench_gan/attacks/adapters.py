"""Adapters: ART and foolbox attacks under our Attack base, as ``art:Name`` and ``foolbox:Name``.

``ATTACKS.create("art:ProjectedGradientDescent", max_iter=10, rel_stepsize=0.1)``
runs ``art.attacks.evasion.ProjectedGradientDescent`` on our model, and
``ATTACKS.create("foolbox:LinfPGD", steps=10)`` runs ``foolbox.attacks.LinfPGD``.
The suite's keyword arguments go to the library's constructor; the adapter
owns the ones that describe the budget and the run:

- ``norm``: ``"linf"`` or ``"l2"``; passed on as ART's ``norm`` (``np.inf`` or
  2) or foolbox's ``distance`` where the class takes one. Otherwise it is the
  class's own norm (foolbox: its ``distance``; ART: linf for BasicIterativeMethod
  and CarliniLInfMethod, l2 for the rest) and only names the ball the base
  projects onto.
- eps: an ART class that takes ``eps`` gets each budget; its ``eps_step`` is
  ``rel_stepsize * eps``, by default with ART's own ratio of default step to
  default eps (1/3 for PGD: 0.1 at eps 0.3), so a small eps never gets a step
  larger than itself. Foolbox fixed-epsilon attacks get ``epsilons=eps`` and
  take ``rel_stepsize`` themselves.
- Attacks without a budget (ART classes without ``eps``, foolbox's
  MinimizationAttack subclasses) are ``minimal``: run once, unbounded, and cut
  to every budget by the base.
- ``targeted`` where the class supports it (ART: a ``targeted`` parameter;
  foolbox: TargetedMisclassification in the criteria its ``run`` accepts).
- ``batch_size`` is the base's and also ART's (but SimBA, which only runs one
  image at a time); ART's ``verbose`` defaults to False.
- ``seed``: ART draws from NumPy's global stream and foolbox from torch's, so
  every batch runs with both global streams seeded from the attack's own
  generator (reset per budget by the base); their previous states are restored
  afterwards, so the caller's global RNGs are left as they were.

ART and foolbox are imported only when such a name is resolved.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError
from ..registry import ATTACKS
from .base import NORMS, Attack

ART_NORMS: dict[str, float] = {"linf": math.inf, "l2": 2}
ART_LINF_WITHOUT_NORM = frozenset({"BasicIterativeMethod", "CarliniLInfMethod"})
ART_BLACK_BOX = frozenset(
    {"BoundaryAttack", "GeoDA", "HopSkipJump", "PixelAttack", "SignOPTAttack", "SimBA",
     "SquareAttack", "ThresholdAttack", "ZooAttack"}
)  # fmt: skip
ART_OWNED = frozenset({"eps", "eps_step", "targeted", "batch_size", "norm"})
ART_ONE_AT_A_TIME = frozenset({"SimBA"})
FOOLBOX_BLACK_BOX_MODULES = frozenset(
    {"additive_noise", "binarization", "blended_noise", "blur", "boundary_attack", "contrast",
     "contrast_min", "dataset_attack", "gen_attack", "hop_skip_jump", "inversion", "pointwise",
     "saltandpepper"}
)  # fmt: skip
BASE_KWARGS = ("norm", "targeted", "seed", "batch_size")


# -- resolvers (registered as the namespaces "art" and "foolbox") ----------------------
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


ATTACKS.add_namespace("art", resolve_art)
ATTACKS.add_namespace("foolbox", resolve_foolbox)


def unknown_name(library: str, name: str, known: Mapping[str, Any]) -> UserError:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(f'{library}:{c}' for c in close)}?" if close else ""
    return UserError(f"unknown attack {library}:{name}{hint}")


# -- shared machinery -------------------------------------------------------------------
def check_params(label: str, params: Mapping[str, Any], accepted: set[str], hints: dict) -> None:
    """Unknown keyword arguments are ValueErrors naming the accepted ones."""
    for key in params:
        if key in hints:
            raise ValueError(f"{label}: {hints[key]}")
        if key not in accepted:
            raise ValueError(
                f"{label} has no parameter {key!r} (accepted: {', '.join(sorted(accepted))})"
            )


def check_norm(label: str, norm: str | None) -> None:
    if norm is not None and norm not in NORMS:
        raise ValueError(f"{label}: norm must be one of {NORMS}, got {norm!r}")


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


def init_parameters(cls: type, skip_first: bool) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls.__init__`` (minus the estimator for ART)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if skip_first:
        params = params[1:]
    return {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


class Float32Input(nn.Module):
    """Casts inputs to float32: ART's decision-based attacks (Boundary, HopSkipJump)
    query the model with float64 arrays."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.float())


# -- ART -----------------------------------------------------------------------------------
class ArtAttack(LibraryAttack):
    """An ART evasion attack (``art:<ClassName>``) on our model; see the module docstring."""

    def __init__(
        self,
        cls: type,
        *,
        norm: str | None = None,
        rel_stepsize: float | None = None,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int = 256,
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
        if rel_stepsize is not None and not rel_stepsize > 0:
            raise ValueError(f"{label}: rel_stepsize must be > 0, got {rel_stepsize}")
        check_norm(label, norm)
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
        if not self.takes_norm:
            return "linf" if self.cls.__name__ in ART_LINF_WITHOUT_NORM else "l2"
        default = signature["norm"].default
        for name, value in ART_NORMS.items():
            if default == value or str(default) == str(value):
                return name
        raise ValueError(f"{label}: ART's default norm is {default!r}; set norm = 'linf' or 'l2'")

    def estimator(self, model: nn.Module, shape: tuple[int, ...], classes: int, device):
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
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target: Tensor | None
    ) -> Tensor:
        with torch.no_grad():
            classes = model(x[:1]).shape[1]
        estimator = self.estimator(model, tuple(x.shape[1:]), classes, x.device)
        attack = self.build(estimator, eps)
        labels = (target if self.targeted else y).cpu().numpy()
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


# -- foolbox ------------------------------------------------------------------------------
class FoolboxAttack(LibraryAttack):
    """A foolbox 3 attack (``foolbox:<Name>``) on our model; see the module docstring."""

    def __init__(
        self,
        cls: type,
        name: str,
        *,
        norm: str | None = None,
        targeted: bool = False,
        seed: int = 0,
        batch_size: int = 256,
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
        check_norm(label, norm)
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
        self, model: nn.Module, x: Tensor, y: Tensor, eps: float, target: Tensor | None
    ) -> Tensor:
        import foolbox as fb

        fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0), device=x.device)
        if self.targeted:
            criterion = fb.criteria.TargetedMisclassification(target)
        else:
            criterion = fb.criteria.Misclassification(y)
        # epsilons=None: a minimization attack's unclipped result
        epsilons = None if self.minimal else eps
        with global_rngs_seeded(self.batch_seed(), x.device):
            _, clipped, _ = self.attack(fmodel, x, criterion, epsilons=epsilons)
        return clipped
