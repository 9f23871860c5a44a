"""The `rbg` command: run | report | eval | verify | list | validate | publish | compare.

A user error (bad suite, unknown plugin, missing data) prints one line,
``rbg: error: <where>: <what>``, and exits with status 2; a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import cli_audit_attack, cli_list, cli_model, cli_reproduce
from .errors import UserError


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
    run.add_argument(
        "--seed",
        type=int,
        help="run the suite with this seed in place of its own (a new run: "
        "other splits where the dataset draws them, other initial weights, other restarts)",
    )
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
    run.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run only the cells whose label matches PATTERN (shell-style), or whose column "
        "does: model=NAME, attack=NAME, generator=NAME, kind=KIND, ... (repeat to narrow), "
        "and those they build on; the tables and report then hold the finished cells, "
        "marked partial",
    )
    run.add_argument(
        "--jobs",
        type=int,
        help="cells run at once in worker processes on this machine (default: the number of "
        "CPU cores; 1 on a GPU); the numbers are those of a serial run",
    )
    run.add_argument("--executor", default="local", help="local | ray (default: local)")
    run.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    run.add_argument("--workers", type=int, help="CPUs of a local Ray instance (default: all)")
    run.add_argument(
        "--amp",
        action="store_true",
        help="train classifiers and GANs under bfloat16 autocast (for GPUs; attacks stay float32)",
    )
    run.add_argument(
        "--channels-last",
        action="store_true",
        help="evaluate the models in the channels-last memory layout (CPU throughput; other "
        "kernels, so the numbers agree statistically, not bit for bit; the device column says it)",
    )

    cli_list.add_parser(commands)

    report = commands.add_parser(
        "report", help="render a run's tables, plots and report again from its stored results"
    )
    report.add_argument("run_dir", help="the --out folder of a run")
    report.add_argument("--cache-dir", help="the run's store, if it moved (default: as run)")
    report.add_argument("--data-dir", help="the data root, if it moved (default: as run)")

    cli_model.add_parsers(commands)
    cli_reproduce.add_parser(commands)
    cli_audit_attack.add_parser(commands)

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

    compare = commands.add_parser(
        "compare",
        help="rows that differ between two result files or runs beyond noise (exit 1 if any)",
        description="Rows are matched on suite, seed, model, attack, norm and eps. Each "
        "changed accuracy is tested against the noise of its images and printed with the "
        "difference, its 95%% interval and the p-value; mean perturbation norms and passes may "
        "move within a documented relative tolerance (docs/reproducibility.md); every other "
        "column but bookkeeping (time, device, versions, links) must be equal. Exit 0: the runs "
        "agree, 1: a significant difference, 2: bad input.",
        epilog="The test is McNemar's exact test on paired per-image outcomes where A and B are "
        "run folders (or their leaderboard.csv) whose samples.csv gives the row's outcomes for "
        "the same images (the same labels in the same order): the clean accuracy, the worst "
        "case or a norm's only attack, and the first attack run. Elsewhere (other images, as "
        "most seeds draw; a published CSV; a later attack) it is the two-proportion z-test on "
        "the accuracies over n_eval images. A change is significant when Holm's correction "
        "over all tests keeps it at --alpha; the others are listed as within noise. Exit 1 for "
        "a significant change, a row on one side only, or a setting (attack_params, n_eval, "
        "indicators, ...) that differs. --across-seeds matches rows without the seed and leaves the "
        "norms and passes out; --exact compares every number digit for digit.",
    )
    compare.add_argument("a", help="a leaderboard CSV or a run folder")
    compare.add_argument("b", help="a leaderboard CSV or a run folder")
    compare.add_argument(
        "--tolerance", type=float, default=0.0,
        help="largest absolute change of a number that is no change (default 0)",
    )  # fmt: skip
    compare.add_argument(
        "--across-seeds", action="store_true",
        help="runs of different seeds: match rows without the seed (see below)",
    )  # fmt: skip
    compare.add_argument(
        "--exact", action="store_true",
        help="no tests: any change of a number beyond --tolerance is a difference (the runs "
        "of one machine, threads and kernel path are bit-identical)",
    )  # fmt: skip
    compare.add_argument(
        "--alpha", type=float, default=0.05,
        help="the family-wise significance level of the tests (default 0.05)",
    )  # fmt: skip
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
        channels_last=args.channels_last,
        executor=args.executor,
        address=args.address,
        workers=args.workers,
        force=args.force,
        only=args.only,
        jobs=args.jobs if args.jobs is not None else default_jobs(args.device),
        seed=args.seed,
    )
    counts, partial = summary.counts, summary.partial
    print(
        f"rbg: {counts['run']} cells run, {counts['cached']} from cache"
        + (f", {counts['recomputed']} recomputed (corrupt cache)" if counts["recomputed"] else "")
        + f"; results in {summary.out}/ (report.md, leaderboard.csv, ...)"
        + ("" if partial is None else f", partial: {partial['finished']} of "
           f"{partial['cells']} cells of the suite (run it without --only to finish)")
    )  # fmt: skip
    return 0


def default_jobs(device: str) -> int:
    """All cores on a CPU run; one process on a GPU (it is shared, not multiplied)."""
    import torch

    from .runner.pool import default_jobs as cores

    on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return 1 if on_gpu else cores()


def cmd_report(args: argparse.Namespace) -> int:
    """Render a run folder again from the store, opened read-only (nothing is computed or
    written there); an `rbg eval` folder's suite comes from its run.json."""
    from pathlib import Path

    from .runner.run import read_manifest, run_suite
    from .runner.store import read_only_stores
    from .suite.eval_folder import RECORD, SUITE_FILE, manifest_entries, recorded_suite

    folder = Path(args.run_dir)
    manifest = read_manifest(folder)
    record = manifest.get(RECORD)  # an `rbg eval` folder: its suite was built in memory
    suite = folder / str(manifest["suite"])
    if record is None and suite.name == SUITE_FILE and not suite.is_file():
        raise UserError(
            "written by `rbg eval` of an older version, whose run.json does not say how to "
            "render it: run that `rbg eval` again (its stored cells are reused)",
            where=str(folder),
        )
    rerun = f"the `rbg eval` that wrote {folder}" if record else f"`rbg run {suite} --out {folder}`"

    def path_of(key: str, given: str | None) -> str | None:  # the manifest's: relative to run
        if given is not None:
            return given
        value = manifest.get(key)
        return None if value is None else str(folder / value)

    with read_only_stores(f"`rbg report` recomputes nothing: rerun {rerun} with this store"):
        summary = run_suite(
            suite if record is None else recorded_suite(folder, record),
            out=folder,
            device=str(manifest.get("device", "cpu")),
            data_dir=path_of("data_dir", args.data_dir),
            cache_dir=path_of("cache_dir", args.cache_dir),
            progress=False,
            amp=bool(manifest.get("amp", False)),
            channels_last=bool(manifest.get("channels_last", False)),
            only=(manifest.get("partial") or {}).get("only"),  # a partial run: its cells
            render_only=True,
            seed=manifest.get("seed"),  # absent from a run.json written before --seed
            recorded=None if record is None else manifest_entries(record),  # kept for next time
        )
    print(f"rbg: report of {summary.counts['cached']} stored cells in {summary.out}/report.md")
    return 0


def cmd_dry_run(args: argparse.Namespace) -> int:
    from .runner.run import default_cache_dir, prepare
    from .runner.store import Store
    from .suite import load_suite

    suite = without_download(load_suite(args.suite))  # a dry run fetches nothing
    _, _, plan = prepare(suite, args.data_dir, amp=args.amp, seed=args.seed)
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
    from .contract.fields import freeze

    if not suite.dataset.params.get("download"):
        return suite
    params = freeze({**suite.dataset.params, "download": False})
    return dataclasses.replace(suite, dataset=dataclasses.replace(suite.dataset, params=params))


def cmd_publish(args: argparse.Namespace) -> int:
    from .publish.leaderboards import publish

    for path in publish(args.run_dir, args.results):
        print(f"rbg: wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .publish.compare import compare
    from .publish.compare_stats import compare_statistically

    if args.exact and args.across_seeds:
        raise UserError("--exact compares runs of one seed: leave out --across-seeds")
    if args.exact:
        comparison = compare(args.a, args.b, tolerance=args.tolerance)
    else:
        comparison = compare_statistically(
            args.a, args.b, args.tolerance, args.alpha, across_seeds=args.across_seeds
        )
    for line in comparison.lines():
        print(line)
    print(f"rbg: {comparison.summary()}")
    return 1 if comparison.differs else 0


COMMANDS = {
    "run": cmd_run,
    "list": cli_list.cmd_list,
    "report": cmd_report,
    "validate": cmd_validate,
    "publish": cmd_publish,
    "compare": cmd_compare,
    "eval": cli_model.cmd_eval,
    "verify": cli_model.cmd_verify,
    "reproduce": cli_reproduce.cmd_reproduce,
    "audit-attack": cli_audit_attack.cmd_audit_attack,
}


@contextmanager
def stopping_on_ctrl_c() -> Iterator[None]:
    """Ctrl-C says at once that rbg stops, then raises KeyboardInterrupt as usual (the
    executors end their workers; main exits with 130). Left alone where SIGINT is ignored (a
    background job) or this is not the main thread."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        os.write(2, b"rbg: stopping (Ctrl-C) ...\n")  # unbuffered: no buffer to re-enter
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stopping_on_ctrl_c():
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
