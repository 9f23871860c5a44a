"""`rbg audit-attack`: the binarization test of an attack on one model.

Zimmermann et al., "Increasing Confidence in Adversarial Robustness Evaluations" (NeurIPS
2022): per test image the model's head is replaced by a binary readout for which an
adversarial example inside the eps-ball is known to exist; a sound attack finds it on
(nearly) every image. Prints per attack and budget the valid images, those passed and the
pass rate with its 95% Wilson interval (see robustbench_gan/evaluations/binarization.py).
"""

from __future__ import annotations

import argparse
import inspect
import math
from typing import Any

from .cli_model import model_and_test_split, model_arguments, params_of
from .errors import UserError


def add_parser(commands: Any) -> None:
    """Add the ``audit-attack`` subcommand to the ``rbg`` parser."""
    audit = commands.add_parser(
        "audit-attack",
        help="binarization test (Zimmermann et al. 2022): does an attack find adversarial "
        "examples known to exist?",
    )
    model_arguments(audit)
    audit.add_argument(
        "--attack",
        action="append",
        required=True,
        metavar="NAME",
        help="an attack to test (see rbg list attacks); repeatable or separated by commas",
    )
    audit.add_argument(
        "--attack-param",
        action="append",
        default=[],
        metavar="[NAME.]KEY=VALUE",
        help="an attack's constructor argument (VALUE read as JSON, else as text), for every "
        "attack, or with NAME. only for that one; repeatable",
    )
    audit.add_argument("--n", type=int, default=100, help="first N test images (default 100)")
    audit.add_argument(
        "--n-inner",
        type=int,
        default=99,
        help="random inner points per image besides the image (default 99; the paper: 999)",
    )
    audit.add_argument(
        "--n-boundary",
        type=int,
        default=1,
        help="random boundary points per image (default 1, as the paper)",
    )
    audit.add_argument(
        "--eta", type=float, default=0.95, help="inner points lie within eta*eps (default 0.95)"
    )
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    audit.add_argument("--batch-size", type=int, default=256)
    audit.add_argument("--no-progress", action="store_true", help="hide progress bars")


def attack_params(pairs: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per attack name its constructor arguments from ``--attack-param`` pairs."""
    shared, own = [], {name: [] for name in names}
    for pair in pairs:
        key = pair.partition("=")[0]
        prefix, dot, rest = key.partition(".")
        if not dot:
            shared.append(pair)
        elif prefix in own:
            own[prefix].append(pair[len(prefix) + 1 :])
        else:
            raise UserError(f"--attack-param {pair!r} names no attack given with --attack")
    common = params_of(shared, "--attack-param")
    return {name: {**common, **params_of(own[name], "--attack-param")} for name in names}


def make_attack(name: str, params: dict[str, Any], norm: str, seed: int) -> Any:
    """The attack ``name``; one that takes a ``norm`` gets the threat model's unless told."""
    from .registry import ATTACKS

    factory = ATTACKS.get(name)
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepted = {}
    params = dict(params)
    for key, value in (("norm", norm), ("seed", seed)):
        if key in accepted:
            params.setdefault(key, value)
    try:
        return ATTACKS.create(name, **params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"attack {name!r}: {exc}") from None


def label_of(name: str, params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("norm", "seed")}
    return f"{name}({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else name


def cmd_audit_attack(args: argparse.Namespace) -> int:
    from .contract.fields import parse_eps
    from .contract.norms import Norm
    from .evaluations.binarization import binarization_test
    from .publish.intervals import wilson

    norm = Norm.parse(args.threat_model)
    if norm is None:
        raise UserError(f"--threat-model must be Linf or L2, got {args.threat_model!r}")
    eps = parse_eps(args.eps, "--eps")
    if eps <= 0:
        raise UserError("--eps must be > 0 for the binarization test")
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    if args.n_inner < 0 or args.n_boundary < 1 or not 0 < args.eta < 1:
        raise UserError("want --n-inner >= 0, --n-boundary >= 1 and 0 < --eta < 1")
    names = [n.strip() for text in args.attack for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--attack names no attack")
    per_attack = attack_params(args.attack_param, names)
    attacks = [(label_of(n, per_attack[n]), make_attack(n, per_attack[n], norm.value, args.seed))
               for n in names]  # fmt: skip

    model, data = model_and_test_split(args, args.n)
    x, y = data.x_test[: args.n], data.y_test[: args.n]

    rows = []
    for label, attack in attacks:
        result = binarization_test(
            model,
            attack,
            x,
            y,
            eps,
            norm.value,
            n_inner=args.n_inner,
            n_boundary=args.n_boundary,
            eta=args.eta,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=not args.no_progress,
        )
        low, high = wilson(result.passed, result.valid)
        rate = "n/a" if math.isnan(result.pass_rate) else f"{result.pass_rate:.3f}"
        interval = "n/a" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"
        skipped = len(result.outcomes) - result.valid - result.invalid
        rows.append([label, f"{args.eps}", str(result.valid), str(result.passed), rate, interval,
                     str(result.invalid), str(skipped)])  # fmt: skip
    header = ["attack", "eps", "valid", "passed", "pass rate", "95% CI", "invalid", "misclassified"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(
        f"rbg: binarization test on {len(x)} images of {args.dataset} ({norm.display}, "
        f"{args.n_inner} inner and {args.n_boundary} boundary points per image, seed "
        f"{args.seed}); a sound attack passes on nearly every valid image"
    )
    return 0
