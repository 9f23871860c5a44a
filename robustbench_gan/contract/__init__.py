"""The contract between the pipeline and the kinds of evaluation, on a floor of its own.

What the suite reader, the planner, the executors, the tables step and the report share with
every kind: the kind protocol and its registry (kind.py, kinds.py), typed cell specs and
results (records.py), cells and the plan they form (cells.py, plan.py), the validated suite
and the training settings it holds (suite.py, configs.py), the norms (norms.py), the data
and the context a cell runs with (data.py, context.py: the store seen through a protocol),
the finished cells the tables step reads (results.py) and the tables it builds (tables.py).
The pipeline (suite, runner, report), the kinds (evaluations/) and the plugins import it; it
imports none of them (kinds.py finds the built-in kinds by their package's name, at first
use).
"""
