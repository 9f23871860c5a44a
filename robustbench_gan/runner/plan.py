"""From a suite to a list of cells in dependency order.

The planner names no kind of evaluation: it runs the plan steps of every registered kind
(``contract.kinds``) in stage order, each adding its cells to a ``contract.plan.Plan``.
"""

from __future__ import annotations

from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.suite import Suite


def build_plan(suite: Suite, data_fingerprint: str, *, amp: bool = False) -> Plan:
    """Every cell the suite needs, upstream before downstream. ``amp`` (bfloat16 autocast in
    training) changes the trained weights, so the training kinds put it in their specs."""
    plan = Plan(data=data_fingerprint, amp=amp)
    steps = [
        (stage, position, index, step)
        for position, kind in enumerate(EVALUATIONS.ordered())
        for index, (stage, step) in enumerate(kind.plan_steps())
    ]
    for *_, step in sorted(steps, key=lambda s: s[:3]):
        step(suite, plan)
    plan.models = {label: plan.models[label] for label in suite.model_labels}  # suite order
    return plan
