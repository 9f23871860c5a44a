"""`rbg reproduce RUN_DIR`: the run's suite again on this machine, a verdict per table."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    reproduce = commands.add_parser(
        "reproduce",
        help="run a finished run's suite again here in a fresh store and say, table by "
        "table, whether the numbers agree (exit 1 if any table differs)",
        description="Reads RUN_DIR/run.json (suite, seed, device, data), runs the suite into "
        "--out in a fresh store and compares every table with RUN_DIR's: accuracies and other "
        "shares of images tested against their noise (Holm-corrected), norms and passes "
        "within documented relative tolerances, claims (beats_baseline, the report's "
        "findings) and settings equal; a GAN's FID and losses are not compared (chaotic "
        "across CPUs), its claims are. The verdict is added to RUN_DIR/reproductions.json, "
        "which rbg publish shows. Exit 0: every table agrees, 1: a table differs, 2: bad "
        "input. See docs/reproducibility.md.",
    )
    reproduce.add_argument("run_dir", help="the --out folder of a finished run")
    reproduce.add_argument(
        "--out", help="where the new run goes (default: RUN_DIR-reproduced beside it)"
    )
    reproduce.add_argument(
        "--cache-dir",
        help="a new or empty folder for the fresh store, kept afterwards (default: a "
        "temporary one, removed)",
    )
    reproduce.add_argument("--data-dir", help="the data root, if it moved (default: as run)")
    reproduce.add_argument(
        "--jobs", type=int, help="cells run at once (default: the number of CPU cores)"
    )
    reproduce.add_argument(
        "--alpha", type=float, default=0.05,
        help="the family-wise significance level of each table's tests (default 0.05)",
    )  # fmt: skip
    reproduce.add_argument("--no-progress", action="store_true", help="hide progress bars")


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .errors import UserError
    from .publish.reproduce import reproduce
    from .runner.pool import default_jobs

    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must lie between 0 and 1, not {args.alpha}")
    result = reproduce(
        args.run_dir,
        cache_dir=args.cache_dir,
        out=args.out,
        data_dir=args.data_dir,
        jobs=args.jobs if args.jobs is not None else default_jobs(),
        progress=not args.no_progress,
        alpha=args.alpha,
    )
    for verdict in result.verdicts:
        print(verdict.text())
        for line in verdict.lines:
            print(f"  {line}")
    differ = [v.table for v in result.verdicts if not v.agrees]
    if differ:
        print(f"rbg: not reproduced: {', '.join(differ)} differ; new run in {result.out}/")
        return 1
    print(f"rbg: reproduced: all {len(result.verdicts)} tables agree; new run in {result.out}/")
    return 0
