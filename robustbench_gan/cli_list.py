"""`rbg list [-v] [KIND] [PATTERN]`: the registered plugins and kinds of evaluation.

Plain: one line per kind, every name ``rbg run`` accepts (aliases after their name). With
``-v``: per plugin its one-line description, its parameters with their defaults and its
aliases; an entry-point plugin that fails to import is shown as such, never a traceback.
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

from .errors import UserError
from .registry import REGISTRIES, Registry

KIND_NAMES = {f"{kind}s": kind for kind in REGISTRIES} | {kind: kind for kind in REGISTRIES}
#: parameters the runner fills from the data or the suite: not the user's to set
RUNNER_SETS = {"self", "in_shape", "num_classes", "mean", "std", "seed", "batch_size"}


def add_parser(commands: Any) -> None:
    listing = commands.add_parser("list", help="list registered plugins")
    listing.add_argument(
        "kind",
        nargs="?",
        help="datasets | classifiers | generators | attacks | defenses | evaluations",
    )
    listing.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'pgd*'")
    listing.add_argument(
        "-v", "--verbose", action="store_true", help="descriptions, parameters and aliases"
    )


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
        registry = REGISTRIES[kind]
        names = registry.list(args.pattern)
        if args.verbose:
            print(f"{kind}s:")
            for name in names:
                print(describe(registry, name))
            for prefix in registry.namespaces():
                if fnmatch.fnmatchcase(f"{prefix}:", args.pattern) or args.pattern == "*":
                    print(f"  {prefix}:<NAME>\n      {about(registry, prefix)}")
            continue
        shown = [with_aliases(registry, n) for n in names]
        print(f"{kind}s: {', '.join(shown) if shown else '(none)'}")
    if evaluations:
        from .contract.kinds import EVALUATIONS

        names = [n for n in EVALUATIONS.names() if fnmatch.fnmatchcase(n, args.pattern)]
        if args.verbose:
            print("evaluations:")
            for name in names:
                print(f"  {name}\n      {first_line(type(EVALUATIONS.get(name)))}")
        else:
            print(f"evaluations: {', '.join(names) if names else '(none)'}")
    return 0


def about(registry: Registry, prefix: str) -> str:
    """What a namespace's names are, as its plugin registered it."""
    namespace = registry.namespace(prefix)
    return (namespace.about if namespace else "") or "a namespace"


def with_aliases(registry: Registry, name: str) -> str:
    aliases = registry.aliases(name)
    return f"{name} (alias {', '.join(aliases)})" if aliases else name


def describe(registry: Registry, name: str) -> str:
    """Two or three indented lines: name and aliases, description, parameters."""
    head = f"  {with_aliases(registry, name)}"
    try:
        factory = registry.get(name)
    except UserError as exc:  # a broken third-party plugin
        return f"{head}\n      (cannot be loaded: {exc})"
    lines = [head, f"      {first_line(factory)}"]
    params = parameters(factory)
    if params:
        lines.append(f"      parameters: {params}")
    return "\n".join(lines)


def first_line(obj: Any) -> str:
    """The first sentence of ``obj``'s docstring, on one line."""
    paragraph = " ".join((inspect.getdoc(obj) or "").strip().split("\n\n")[0].split())
    if not paragraph:
        return "(no description)"
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def parameters(factory: Callable[..., Any]) -> str:
    """``name=default`` for the keyword parameters a suite entry may set."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return ""
    shown = []
    for p in signature.parameters.values():
        if p.name in RUNNER_SETS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        shown.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(shown)
