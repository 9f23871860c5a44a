"""Across runs: published leaderboards (``rbg publish``), comparing two runs (``rbg
compare``) and reproducing one (``rbg reproduce``). It reads the folders runs wrote (their
CSVs, cards and run.json), never a run's store or plan; it sits above the runner, which it
calls to reproduce a run, and the report, whose formatting it shares."""
