"""``[corruptions]`` and ``[certify]``: the settings of the common-corruption benchmark and of
randomized smoothing's certificates, read and checked once, up front (evaluations/
corruption.py and evaluations/certified.py run them).

    [corruptions]                     # Hendrycks & Dietterich, ICLR 2019; Mu & Gilmer 2019
    n = 500                           # test images (default: [eval] n)
    severities = [1, 2, 3, 4, 5]      # default: all five
    names = ["gaussian_noise", "fog"] # default: the data's set (corruptions.corruption_set)
    baseline = "small_cnn"            # relative mCE against it (default: the first target)

    [certify]                         # Cohen, Rosenfeld & Kolter, ICML 2019
    sigma = 0.25                      # the smoothing noise's standard deviation ([0, 1] scale)
    n0 = 100                          # noisy copies that choose the class
    n = 1000                          # noisy copies that estimate its probability
    alpha = 0.001                     # a certificate is wrong with probability at most alpha
    images = 200                      # test images certified (default: [eval] n)
    radii = [0.0, 0.25, 0.5, 1.0]     # L2 radii of certified.csv
    batch = 400                       # noisy copies per forward pass
    models = ["small_cnn+gaussian_augment"]   # default: every model

A corruption is named by its registered name only: a ``module:attr`` name would import code
while the suite is read, so it is refused.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contract.fields import budgets, table, typed, unknown_keys
from ..contract.records import Record
from ..contract.suite import Suite
from ..corruptions import SEVERITIES
from ..errors import UserError
from ..registry import CORRUPTIONS

CORRUPTION_KEYS = {"n", "severities", "names", "baseline"}
CERTIFY_KEYS = {"sigma", "n0", "n", "alpha", "images", "radii", "batch", "models"}
#: Cohen et al.'s sigma for CIFAR-10 (and gaussian_augment's default), their n0 and alpha
CERTIFY_DEFAULTS: Mapping[str, Any] = {
    "sigma": 0.25,
    "n0": 100,
    "n": 1000,
    "alpha": 0.001,
    "radii": [0.0, 0.25, 0.5, 0.75, 1.0],
    "batch": 400,
}


@dataclass(frozen=True)
class CorruptionSettings(Record):
    """``[corruptions]``: the test images, the severities, the corruptions (None: the set of
    the data's channel count, chosen when the images are known) and the mCE's baseline."""

    n: int | None
    severities: tuple[int, ...]
    names: tuple[str, ...] | None
    baseline: str


@dataclass(frozen=True)
class CertifySettings(Record):
    """``[certify]``: CERTIFY's parameters, the radii tabulated and the models certified."""

    sigma: float
    n0: int
    n: int
    alpha: float
    images: int | None
    radii: tuple[float, ...]
    batch: int
    models: tuple[str, ...]


def read_corruptions(raw: Mapping[str, Any], suite: Suite) -> CorruptionSettings | None:
    """``[corruptions]`` of a suite, checked against its models (None when absent)."""
    key = "corruptions"
    if key not in raw:
        return None
    entry = table(raw, key)
    unknown_keys(entry, CORRUPTION_KEYS, key)
    n = count(entry.get("n"), f"{key}.n")
    severities = severity_list(entry.get("severities", list(SEVERITIES)), f"{key}.severities")
    names = entry.get("names")
    chosen = None if names is None else corruption_names(names, f"{key}.names")
    models = suite.model_labels
    default = models[0] if models else None
    baseline = typed(entry.get("baseline", default), str, f"{key}.baseline", required=True)
    if baseline not in models:
        raise UserError(
            f"{baseline!r} is not a model of the suite ({', '.join(models)})",
            where=f"{key}.baseline",
        )
    return CorruptionSettings(n, severities, chosen, baseline)


def read_certify(raw: Mapping[str, Any], suite: Suite) -> CertifySettings | None:
    """``[certify]`` of a suite, checked against its models (None when absent)."""
    key = "certify"
    if key not in raw:
        return None
    entry = {**CERTIFY_DEFAULTS, **table(raw, key)}
    unknown_keys(entry, CERTIFY_KEYS, key)
    sigma = typed(entry["sigma"], float, f"{key}.sigma")
    if not math.isfinite(sigma) or sigma <= 0:
        raise UserError(f"must be a finite number > 0, got {sigma}", where=f"{key}.sigma")
    alpha = typed(entry["alpha"], float, f"{key}.alpha")
    if not 0 < alpha < 1:
        raise UserError(f"must lie strictly between 0 and 1, got {alpha}", where=f"{key}.alpha")
    radii = budgets(entry["radii"], f"{key}.radii")
    return CertifySettings(
        sigma=sigma,
        n0=count(entry["n0"], f"{key}.n0", required=True),
        n=count(entry["n"], f"{key}.n", required=True),
        alpha=alpha,
        images=count(entry.get("images"), f"{key}.images"),
        radii=radii,
        batch=count(entry["batch"], f"{key}.batch", required=True),
        models=model_labels(entry.get("models", suite.model_labels), suite, f"{key}.models"),
    )


def count(value: Any, where: str, *, required: bool = False) -> int | None:
    """A whole number >= 1 (None when absent and not ``required``)."""
    number = typed(value, int, where, required=required)
    if number is not None and number < 1:
        raise UserError(f"must be at least 1, got {number}", where=where)
    return number


def severity_list(value: Any, where: str) -> tuple[int, ...]:
    """Distinct severities among 1..5, sorted."""
    if not isinstance(value, list) or not value:
        raise UserError(f"must be a non-empty list of severities 1..5, got {value!r}", where=where)
    for index, severity in enumerate(value):
        whole = isinstance(severity, numbers.Integral) and not isinstance(severity, bool)
        if not whole or severity not in SEVERITIES:
            raise UserError(
                f"must be a whole number 1..5, got {severity!r}", where=f"{where}[{index}]"
            )
    if len(set(value)) != len(value):
        raise UserError("lists a severity twice", where=where)
    return tuple(sorted(int(s) for s in value))


def corruption_names(value: Any, where: str) -> tuple[str, ...]:
    """Registered corruption names (aliases resolved), distinct, in the order given."""
    if not isinstance(value, list) or not value:
        raise UserError("must be a non-empty list of corruption names", where=where)
    out: list[str] = []
    for index, name in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(name, str):
            raise UserError(f"must be a corruption name, got {name!r}", where=at)
        if ":" in name:  # module:attr would import code while the suite is read
            raise UserError(f"{name!r}: only registered corruptions are accepted", where=at)
        try:
            CORRUPTIONS.get(name)
        except UserError as exc:
            raise exc.at(at) from None
        canonical = CORRUPTIONS.canonical(name)
        if canonical in out:
            raise UserError(f"lists {canonical!r} twice", where=where)
        out.append(canonical)
    return tuple(out)


def model_labels(value: Any, suite: Suite, where: str) -> tuple[str, ...]:
    """Distinct labels of models the suite evaluates."""
    models = suite.model_labels
    if not isinstance(value, list) or not value:
        raise UserError("must be a non-empty list of model labels", where=where)
    for index, label in enumerate(value):
        if not isinstance(label, str) or label not in models:
            raise UserError(
                f"{label!r} is not a model of the suite ({', '.join(models)})",
                where=f"{where}[{index}]",
            )
    if len(set(value)) != len(value):
        raise UserError("lists a model twice", where=where)
    return tuple(value)
