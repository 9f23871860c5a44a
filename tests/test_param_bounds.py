"""A parameter's bound is declared once, in its annotation, and holds on every way in.

Every registered attack is swept: each annotated parameter refuses a value outside its bound
with a one-line ValueError naming it when the attack is built in Python, and with a UserError
naming the suite field when the suite is read; every default passes its own bound.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import pytest

from robustbench_gan.attacks.base import Attack
from robustbench_gan.bounds import (
    Count,
    Flag,
    OneOf,
    Range,
    check_ranges,
    checked,
    declared_bounds,
    declared_ranges,
)
from robustbench_gan.errors import UserError
from robustbench_gan.registry import ATTACKS
from robustbench_gan.suite import load_suite

NAMES = ATTACKS.list()


def bounded(kind: type) -> list[Any]:
    """``(attack, parameter, bound)`` for every parameter of every attack bounded by ``kind``."""
    return [
        pytest.param(name, key, bound, id=f"{name}.{key}")
        for name in NAMES
        for key, (bound, _) in declared_bounds(ATTACKS.get(name)).items()
        if isinstance(bound, kind)
    ]


def outside(bound: Range) -> list[float]:
    """Values just past each end of ``bound``, and one of the wrong kind."""
    bad: list[float] = [2.5 if bound.whole else math.inf]
    if bound.low is not None:
        bad.append(bound.low if bound.open_low else bound.low - 1)
    if bound.high is not None:
        bad.append(bound.high if bound.open_high else bound.high + 1)
    return bad


def refused(name: str, key: str, value: Any) -> tuple[str, UserError]:
    """The Python error's text and the suite's error for ``key = value`` on attack ``name``."""
    with pytest.raises(ValueError, match=rf"^{key} must be ") as direct:
        ATTACKS.create(name, **{key: value})
    with pytest.raises(UserError) as suite:
        check_ranges(ATTACKS.get(name), {key: value}, "attacks[0]")
    assert suite.value.where == f"attacks[0].{key}"
    text = str(direct.value)
    assert "\n" not in text and text.endswith(f", got {value!r}")
    assert f"{key} {suite.value.message}" == text  # one bound, one message, both ways in
    return text, suite.value


def test_every_attack_declares_its_bounds():
    """An annotation that cannot be resolved would turn the checks off without a word."""
    assert len(NAMES) >= 14
    for name in NAMES:
        bounds = declared_bounds(ATTACKS.get(name))
        assert isinstance(bounds.get("batch_size", (None,))[0], Range), name


@pytest.mark.parametrize("name, key, bound", bounded(Range))
def test_numbers_outside_their_range_are_refused(name: str, key: str, bound: Range):
    for value in outside(bound):
        text, _ = refused(name, key, value)
        assert bound.describe() in text


@pytest.mark.parametrize("name, key, bound", bounded(Flag))
def test_flags_refuse_anything_but_true_and_false(name: str, key: str, bound: Flag):
    for value in (1, 0, "yes", None):
        text, _ = refused(name, key, value)
        assert "true or false" in text


@pytest.mark.parametrize("name, key, bound", bounded(OneOf))
def test_choices_refuse_unknown_names_and_list_the_choices(name: str, key: str, bound: OneOf):
    text, error = refused(name, key, "nope")
    for choice in bound.values:
        assert repr(choice) in text and repr(choice) in error.message


@pytest.mark.parametrize("name", NAMES)
def test_defaults_pass_their_own_bounds(name: str):
    factory = ATTACKS.get(name)
    parameters = inspect.signature(factory).parameters
    for key, (bound, optional) in declared_bounds(factory).items():
        default = parameters[key].default
        assert default is not inspect.Parameter.empty, (name, key)
        assert (default is None and optional) or bound.admits(default), (name, key, default)
    assert isinstance(factory(), Attack)


def test_choices_and_flags_are_not_numbers():
    """``declared_ranges`` keeps its meaning for its callers: numeric bounds only."""
    ranges = declared_ranges(ATTACKS.get("pgd"))
    assert set(ranges) == {"steps", "rel_stepsize", "restarts", "seed", "batch_size"}
    assert ranges["rel_stepsize"][1] and not ranges["steps"][1]


def test_flag_and_choice_admit_only_their_own_type():
    assert not Flag().admits(1) and not Flag().admits("true") and Flag().admits(False)
    choice = OneOf([1, 2])
    assert choice.admits(2) and not choice.admits("2") and not choice.admits(2.5)
    assert OneOf(["a"]).describe() == "one of 'a'"


def test_a_new_attack_is_checked_without_a_line_of_its_own():
    """The base wraps every subclass's ``__init__``: only its own annotated parameters are
    checked, defaults too, and arguments that do not bind stay the constructor's TypeError."""

    class Mine(Attack):
        def __init__(self, *, k: Count = 1, free=-5, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.k, self.free = k, free

        def perturb(self, model, x, y, eps, target_class):
            return x

    assert Mine(k=3, free="anything").k == 3
    with pytest.raises(ValueError, match=r"^k must be a whole number >= 1, got 0$"):
        Mine(k=0)
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1, got 0$"):
        Mine(batch_size=0)  # reaches the base, whose own parameters are checked there
    with pytest.raises(TypeError):
        Mine(1)
    assert checked(Mine.__init__) is Mine.__init__  # wrapped once


def test_a_default_outside_its_bound_fails_at_once():
    @checked
    def plugin(*, steps: Count = 0) -> int:
        return steps

    with pytest.raises(ValueError, match="steps must be a whole number >= 1, got 0"):
        plugin()
    assert plugin(steps=2) == 2


SUITE = """
name = "bounds"
[dataset]
name = "digits"
[eval]
eps = [0, 0.1]
[[targets]]
name = "mlp"
[[attacks]]
name = "{name}"
{key} = {value}
"""


@pytest.mark.parametrize(
    "name, key, value, message",
    [
        ("pgd", "steps", "0", "must be a whole number >= 1, got 0"),
        ("pgd", "norm", '"l3"', "must be one of 'linf' or 'l2', got 'l3'"),
        ("pgd", "random_start", "1", "must be true or false, got 1"),
        ("square", "window_per", '"image"', "must be one of 'sample' or 'batch', got 'image'"),
        ("cw_l2", "lr", "0", "must be a finite number > 0, got 0"),
        ("autoattack", "version", '"quick"', "must be one of 'standard', 'plus', 'rand' or 'fast'"),
        ("fab", "beta", "1.0", "must be a finite number > 0 and < 1, got 1.0"),
    ],
)
def test_a_suite_names_the_field(tmp_path: Path, name: str, key: str, value: str, message: str):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(name=name, key=key, value=value))
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert str(err.value).startswith(f"{path}: attacks[0].{key}: {message}")
    assert "\n" not in str(err.value)


def test_adapters_declare_the_norm_too():
    pytest.importorskip("art")
    factory = ATTACKS.get("art:FastGradientMethod")
    with pytest.raises(UserError, match=r"^attacks\[0\]\.norm: must be one of 'linf' or 'l2'"):
        check_ranges(factory, {"norm": "l1"}, "attacks[0]")
    with pytest.raises(ValueError, match="^rel_stepsize must be a finite number > 0, got 0$"):
        ATTACKS.create("art:ProjectedGradientDescent", rel_stepsize=0)
