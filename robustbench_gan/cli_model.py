"""`rbg eval` and `rbg verify`: one model from the command line, as RobustBench takes it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .errors import UserError

MODEL_HELP = (
    "MODULE:ATTR | NAMESPACE:NAME (a model builder or zoo: rbg list classifiers -v) | "
    "FILE.pt2 (torch.export) | FILE.pt (TorchScript) | a registered classifier name (with "
    "--weights)"
)
STANDARD = "standard"  # api_suite.STANDARD (not imported here: the parser pulls in no torch)


def add_parsers(commands: Any) -> None:
    """Add the ``eval`` and ``verify`` subcommands to the ``rbg`` parser."""
    evaluate = commands.add_parser(
        "eval", help="benchmark one model (loaded as it is) on the official test points"
    )
    model_arguments(evaluate)
    evaluate.add_argument("--n", type=int, default=1000, help="first N test images (default 1000)")
    evaluate.add_argument(
        "--attacks",
        default=STANDARD,
        help=f"'{STANDARD}' (the attack preset of that name: AutoAttack's standard version, "
        "APGD-CE, APGD-T, FAB-T, Square), 'standard_fast' (its verdict for a fraction of the "
        "passes: APGD-CE and APGD-T on 3 targets, the rest only where an indicator of attack "
        "failure fires), 'adaptive' (the standard version, then a remedy for each indicator "
        "that fires: BPDA, EOT, transfer, margin loss, restarts) or attack names separated by "
        "commas",
    )
    evaluate.add_argument("--out", help="output folder (default: results/eval-<model>)")
    evaluate.add_argument("--cache-dir", help="store of finished cells (as for rbg run)")
    evaluate.add_argument("--device", default="auto", help="auto | cpu | cuda")
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    evaluate.add_argument(
        "--corruptions",
        action="store_true",
        help="also accuracy under common corruptions (15 of Hendrycks & Dietterich for colour "
        "images, MNIST-C's for grey ones; 5 severities): mean corruption accuracy and the "
        "worst corruption in the model card, corruption.csv",
    )
    evaluate.add_argument(
        "--corruption-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of a suite's [corruptions] table (severities, names, n); repeatable; "
        "implies --corruptions",
    )
    evaluate.add_argument(
        "--certify",
        action="store_true",
        help="also randomized smoothing's certified accuracy by L2 radius (Cohen et al. "
        "2019; defaults sigma 0.25, n0 100, n 1000, radii 0 to 1 by 0.25): in the model card, "
        "certified.csv",
    )
    evaluate.add_argument(
        "--certify-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key of a suite's [certify] table (sigma, n0, n, alpha, images, radii, batch); "
        "repeatable; implies --certify",
    )

    verify = commands.add_parser(
        "verify", help="check someone else's adversarial examples for the first N test points"
    )
    model_arguments(verify)
    verify.add_argument("--adv", required=True, help="a .pt file: a tensor (N, C, H, W)")
    verify.add_argument("--device", default="cpu", help="cpu | cuda")


def model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--weights", help="a state dict (loaded with weights_only=True)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a constructor argument (VALUE read as JSON, else as text); repeatable",
    )
    parser.add_argument(
        "--mean", help="per-channel mean of a normalization layer, e.g. 0.5,0.5,0.5"
    )
    parser.add_argument("--std", help="per-channel std of that layer")
    parser.add_argument(
        "--dataset", required=True, help="a registered dataset (see rbg list datasets)"
    )
    parser.add_argument("--threat-model", default="Linf", help="Linf | L2 (default Linf)")
    parser.add_argument("--eps", required=True, help="the budget, e.g. 8/255 or 0.3")
    parser.add_argument("--data-dir", help="local root of datasets (default: $RBG_DATA_DIR)")
    parser.add_argument(
        "--dataset-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset option, as a key of a suite's [dataset] table (VALUE read as JSON, "
        "else as text; each dataset's options: rbg list datasets -v); repeatable",
    )


def params_of(pairs: list[str], flag: str = "--param") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"{flag} wants KEY=VALUE with KEY a name, got {pair!r}")
        if key in out:
            raise UserError(f"{flag} {key} is given twice")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def channels(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} wants numbers separated by commas, got {text!r}") from None


def cmd_eval(args: argparse.Namespace) -> int:
    from .api import as_options, benchmark
    from .registry import ATTACKS
    from .render.format import safe_name
    from .suite.targets import default_label

    preset = ATTACKS.preset(args.attacks) is not None
    attacks = args.attacks if preset else args.attacks.split(",")
    mean, std = channels(args.mean, "--mean"), channels(args.std, "--std")
    common = {
        "dataset": args.dataset,
        "threat_model": args.threat_model,
        "eps": args.eps,
        "n_examples": args.n,
        "attacks": attacks,
        "weights": args.weights,
        "params": params_of(args.param),
        "mean": mean,
        "std": std,
        "dataset_params": params_of(args.dataset_param, "--dataset-param"),
    }
    kinds = (  # benchmark()'s corruptions= and certify= (contract.schema.ROBUSTNESS_TABLE_KEYS)
        (args.corruptions, args.corruption_param, "--corruption-param"),
        (args.certify, args.certify_param, "--certify-param"),
    )
    corruptions, certify = (
        params_of(pairs, flag) if asked or pairs else None for asked, pairs, flag in kinds
    )
    out = (
        Path(args.out)
        if args.out
        else Path("results") / f"eval-{safe_name(default_label(args.model))}"
    )
    try:
        result = benchmark(
            args.model,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
            data_dir=args.data_dir,
            out=out,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            corruptions=corruptions,
            certify=certify,
            **common,
        )
    except UserError as exc:  # located at benchmark()'s arguments: say them as options
        raise as_options(exc) from None
    card = result.model_card
    print(
        f"rbg: {card['name']} on {card['dataset']} ({card['threat_model']}, eps {card['eps']}, "
        f"{card['n_examples']} images): clean {result.clean_acc:.4f}, robust "
        f"{result.robust_acc:.4f}"
        + (f"; indicators: {', '.join(result.indicators)}" if result.indicators else "")
    )
    if result.corruptions is not None:
        found = result.corruptions
        print(
            f"rbg: mean corruption accuracy {found['mean_corruption_acc']:.4f}; worst "
            f"corruption {found['worst_corruption']} ({found['worst_corruption_acc']:.4f})"
        )
    if result.certified is not None:
        at = result.certified["certified_acc_by_radius"]
        shown = ", ".join(f"r={r} {v['certified_acc']:.4f}" for r, v in at.items())
        print(f"rbg: certified accuracy (L2, sigma {result.certified['sigma']:g}): {shown}")
    print(f"rbg: results in {out}/ (model_card.json, leaderboard.csv, report.md, ...)")
    return 0


def model_and_test_split(args: argparse.Namespace, max_test: int) -> tuple[Any, Any]:
    """The model of ``--model``/``--weights``/``--param``/``--mean``/``--std`` loaded as
    ``rbg eval`` loads it, and the first ``max_test`` images of ``--dataset``'s test split
    (``rbg verify`` and ``rbg audit-attack``)."""
    import torch

    from .api_suite import dataset_options, model_target
    from .contract.context import Context
    from .evaluations.load_classifier import LoadClassifier
    from .registry import DATASETS
    from .suite.specs import dataset_plugin

    options = dataset_options(params_of(args.dataset_param, "--dataset-param"))
    dataset_plugin(args.dataset, options)  # unknown options: one line
    data = DATASETS.create(
        args.dataset, root=args.data_dir, test_only=True, max_test=max_test, **options
    )
    target = model_target(
        args.model,
        args.weights,
        params_of(args.param),
        channels(args.mean, "--mean"),
        channels(args.std, "--std"),
        Path.cwd(),
        args.dataset,
    )
    ctx = Context(data=data, device=torch.device(args.device), store=None)  # type: ignore[arg-type]
    return LoadClassifier().build(target.to_json(), ctx), data


def cmd_verify(args: argparse.Namespace) -> int:
    from .contract.fields import parse_eps
    from .verify import load_adversarial, verify_adversarial

    adv = load_adversarial(args.adv)
    model, data = model_and_test_split(args, len(adv))
    if len(data.x_test) < len(adv):
        raise UserError(f"{args.adv} holds {len(adv)} images, the test split {len(data.x_test)}")
    report = verify_adversarial(
        model,
        data.x_test[: len(adv)],
        data.y_test[: len(adv)],
        adv,
        eps=parse_eps(args.eps, "--eps"),
        norm=args.threat_model,
    )
    print(report.summary())
    return 0 if bool(report.valid.all()) else 1
