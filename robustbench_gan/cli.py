"""The `rbg` command: run | eval | verify | list | validate | publish | compare.

A user error (bad suite, unknown plugin, missing data) prints one line,
``rbg: error: <where>: <what>``, and exits with status 2; a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import cli_model
from .errors import UserError
from .registry import REGISTRIES

KIND_NAMES = {f"{kind}s": kind for kind in REGISTRIES} | {kind: kind for kind in REGISTRIES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rbg",
        description="Adversarial robustness benchmarks for PyTorch classifiers, GANs in the loop.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite and write CSVs, plots and a report")
    run.add_argument("suite", help="suite file (TOML), e.g. suites/quickstart.toml")
    run.add_argument("--out", help="output folder (default: results/<suite name>)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    run.add_argument("--data-dir", help="local root of datasets (default: $RBG_DATA_DIR)")
    run.add_argument(
        "--cache-dir",
        help="store of trained models and results (default: $RBG_CACHE_DIR or ~/.cache/robustbench_gan)",
    )
    run.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: CPU results are bit-reproducible at a fixed count)",
    )  # fmt: skip
    run.add_argument(
        "--dry-run", action="store_true", help="print the plan and what is cached, run nothing"
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--force",
        nargs="?",
        const="*",
        metavar="PATTERN",
        help="recompute cells even if cached: all, or those whose label matches PATTERN "
        "(shell-style, e.g. 'train *' or '*on mlp'; see --dry-run for labels)",
    )
    run.add_argument("--executor", default="local", help="local | ray (default: local)")
    run.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    run.add_argument("--workers", type=int, help="CPUs of a local Ray instance (default: all)")
    run.add_argument(
        "--amp",
        action="store_true",
        help="train classifiers and GANs under bfloat16 autocast (for GPUs; attacks stay float32)",
    )

    listing = commands.add_parser("list", help="list registered plugins")
    listing.add_argument(
        "kind",
        nargs="?",
        help="datasets | classifiers | generators | attacks | defenses | evaluations",
    )
    listing.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'pgd*'")

    cli_model.add_parsers(commands)

    validate = commands.add_parser("validate", help="check a suite file without running it")
    validate.add_argument("suite")
    validate.add_argument(
        "--data-dir",
        help="also check that the dataset is found there (or in $RBG_DATA_DIR) and loads",
    )

    publish = commands.add_parser(
        "publish", help="merge a run into results/<dataset>-<norm>.csv and render leaderboards"
    )
    publish.add_argument("run_dir", help="the --out folder of a finished run")
    publish.add_argument("--results", default="results", help="where the leaderboards live")

    compare = commands.add_parser("compare", help="differences between two result files or runs")
    compare.add_argument("a", help="a leaderboard CSV or a run folder")
    compare.add_argument("b", help="a leaderboard CSV or a run folder")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from .runner.run import run_suite

    if args.dry_run:
        return cmd_dry_run(args)
    summary = run_suite(
        args.suite,
        out=args.out,
        device=args.device,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        threads=args.threads,
        amp=args.amp,
        executor=args.executor,
        address=args.address,
        workers=args.workers,
        force=args.force,
    )
    counts = summary.counts
    print(
        f"rbg: {counts['run']} cells run, {counts['cached']} from cache"
        + (f", {counts['recomputed']} recomputed (corrupt cache)" if counts["recomputed"] else "")
        + f"; results in {summary.out}/ (report.md, leaderboard.csv, ...)"
    )
    return 0


def cmd_dry_run(args: argparse.Namespace) -> int:
    from .runner.run import default_cache_dir, prepare
    from .runner.store import Store
    from .suite import load_suite

    suite = without_download(load_suite(args.suite))  # a dry run fetches nothing
    _, _, plan = prepare(suite, args.data_dir, amp=args.amp)
    store = Store(args.cache_dir or default_cache_dir())
    labels = {cell.id: cell.label for cell in plan.cells}
    try:
        for cell in plan.cells:
            state = "cached" if store.get(cell.id) is not None else "to run"
            if args.force is not None and fnmatch.fnmatchcase(cell.label, args.force):
                state = "forced"
            upstream = ", ".join(labels[d] for d in cell.deps) or "-"
            print(f"{cell.id}  {state:7}  {cell.kind:16}  {cell.label}  <- {upstream}")
    finally:
        store.close()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    evaluations = args.kind in (None, "evaluation", "evaluations")
    if args.kind is None:
        kinds = list(REGISTRIES)
    elif args.kind in KIND_NAMES:
        kinds = [KIND_NAMES[args.kind]]
    elif evaluations:
        kinds = []
    else:
        choices = ", ".join([*(f"{k}s" for k in REGISTRIES), "evaluations"])
        raise UserError(f"unknown kind {args.kind!r}; choose from {choices}")
    for kind in kinds:
        names = REGISTRIES[kind].list(args.pattern)
        print(f"{kind}s: {', '.join(names) if names else '(none)'}")
    if evaluations:
        from .evaluations import EVALUATIONS

        names = [n for n in EVALUATIONS.names() if fnmatch.fnmatchcase(n, args.pattern)]
        print(f"evaluations: {', '.join(names) if names else '(none)'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .runner.run import load_data
    from .suite import load_suite

    suite = load_suite(args.suite)
    found = ""
    if args.data_dir is not None:  # the data too, as `rbg run` would read it (no download)
        data = load_data(without_download(suite), args.data_dir)
        found = f"; data: {len(data.x_train)} train and {len(data.x_test)} test images"
    print(
        f"{args.suite}: ok ({len(suite.targets)} targets, {len(suite.generators)} generators, "
        f"{len(suite.defenses)} defenses, {len(suite.attacks)} attacks, {len(suite.eps)} budgets"
        f"{found})"
    )
    return 0


def without_download(suite: Any) -> Any:
    """The suite with its dataset's ``download`` off: checks read what is there."""
    from .suite.fields import freeze

    if not suite.dataset.params.get("download"):
        return suite
    params = freeze({**suite.dataset.params, "download": False})
    return dataclasses.replace(suite, dataset=dataclasses.replace(suite.dataset, params=params))


def cmd_publish(args: argparse.Namespace) -> int:
    from .report.publish import publish

    for path in publish(args.run_dir, args.results):
        print(f"rbg: wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .report.publish import compare

    diff = compare(args.a, args.b)
    if diff.empty:
        print("rbg: no differences in clean or robust accuracy")
        return 0
    with pd_display():
        print(diff.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"rbg: {len(diff)} rows differ")
    return 0


def pd_display():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_rows", 500)


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "validate": cmd_validate,
    "publish": cmd_publish,
    "compare": cmd_compare,
    "eval": cli_model.cmd_eval,
    "verify": cli_model.cmd_verify,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"rbg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rbg: interrupted; finished cells are kept, run again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rbg run --dry-run | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
