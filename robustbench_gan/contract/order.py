"""The order of steps that declare what they need and what they give: a topological sort.

The planner and the tables step both use it. A step runs after every other step that gives
something it needs; steps that do not depend on each other keep a stable order (rounds of
what is ready, by name within a round), so the order never depends on which file a kind
lives in or when it was registered. Two steps that each need what the other gives are a
contradiction in the kinds' declarations, reported with both names.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Step(Generic[T]):
    """One unit to order: ``name`` (for ties and errors), what it ``needs`` and ``gives``."""

    name: str
    needs: frozenset[Hashable]
    gives: frozenset[Hashable]
    value: T


def ordered(steps: Sequence[Step[T]]) -> list[Step[T]]:
    """``steps`` with every giver of a thing before each other step needing it.

    ValueError names the steps of a cycle. A need nobody gives is not an error: a suite
    without generators plans no generator cells, and a kind reading them finds none."""
    after: dict[int, set[int]] = {i: set() for i in range(len(steps))}
    for i, step in enumerate(steps):
        for j, other in enumerate(steps):
            if i != j and step.needs & other.gives:
                after[i].add(j)
    done: list[int] = []
    left = set(after)
    while left:
        ready = sorted((i for i in left if after[i] <= set(done)), key=lambda i: steps[i].name)
        if not ready:
            stuck = ", ".join(sorted(steps[i].name for i in left))
            raise ValueError(f"the kinds' declarations form a cycle among: {stuck}")
        done += ready
        left -= set(ready)
    return [steps[i] for i in done]
