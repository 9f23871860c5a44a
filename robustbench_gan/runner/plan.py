"""From a suite to a list of cells in dependency order.

The planner names no kind of evaluation: it runs the plan steps of every registered kind
(``contract.kinds``), each after the steps giving what it needs, each adding its cells to a
``contract.plan.Plan``.
"""

from __future__ import annotations

from ..contract.kinds import EVALUATIONS
from ..contract.plan import Plan
from ..contract.suite import Suite


def build_plan(suite: Suite, data_fingerprint: str, *, amp: bool = False) -> Plan:
    """Every cell the suite needs, upstream before downstream. ``amp`` (bfloat16 autocast in
    training) changes the trained weights, so the training kinds put it in their specs."""
    plan = Plan(data=data_fingerprint, amp=amp)
    for step in EVALUATIONS.plan_steps():
        step.run(suite, plan)
    plan.models = {label: plan.models[label] for label in suite.model_labels}  # suite order
    return plan
