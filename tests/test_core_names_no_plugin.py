"""The core names no plugin: what it needs of one, it asks the registries.

Every registered name and alias of every registry (datasets, classifiers, generators,
attacks, defenses, and the kinds of evaluation), and every namespace prefix (``art:``,
``robustbench:``, ...), is looked for in the code of the core: the string constants of its
modules that are not docstrings (f-strings' literal parts included). A string that is a
plugin's name, or that starts with ``NAME:`` (a plugin's namespace of names), or that holds
``PREFIX:`` of a registered namespace anywhere (help text such as ``robustbench:NAME``), is
the core naming that plugin: it should ask the registry instead (``DATASETS.default()``,
``ATTACKS.preset("standard")``, ``CLASSIFIERS.namespace(name)``, ...). Docstrings and
comments may name plugins as examples.

The core: every module of the package outside the plugin folders, which are the packages
of the registries' built-in plugins (attacks/, defenses/, gans/, models/, data/) and of the
kinds of evaluation (evaluations/): contract/, suite/, runner/, report/, publish/, render/
and the top-level modules.

Exclusion, and why: some words are the contract's own vocabulary before any plugin takes
them as a name. The kinds of plugin (``attack``, ``dataset``, ...), the columns of the
result tables and the suite format's own tables and reserved labels are defined by the
contract, and a plugin that registers the same word (the ``attack`` kind of evaluation
writes the ``attack`` column; ``gan_metrics`` reads the ``[gan_metrics]`` table) shares the
word, it does not own it. The
excluded words are derived, never listed by hand: the registries' kinds, and every public
constant named ``*_COLUMNS``, ``*_KEYS`` or ``*_LABEL`` (a string or a collection of
strings) of the contract's modules (``contract/schema.py``: the tables' columns) and of
``suite/load.py`` (the suite's top-level tables).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import robustbench_gan
from robustbench_gan.registry import REGISTRIES

PACKAGE = Path(robustbench_gan.__file__).parent
CORE_FOLDERS = ("contract", "suite", "runner", "report")  # at least these
VOCABULARY_MODULES = ("robustbench_gan.suite.load",)  # and every module of contract/
VOCABULARY_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*_(COLUMNS|KEYS|LABEL)")

#: (module, plugin name) pairs found in folders this change may not edit: being moved by
#: the contract restructure (evaluations/, runner/, report/, contract/); empty today
KNOWN: set[tuple[str, str]] = set()


def plugin_names() -> dict[str, str]:
    """Every registered name, alias and namespace -> what it is (all plugins loaded)."""
    from robustbench_gan.contract.kinds import EVALUATIONS

    names: dict[str, str] = {}
    for kind, registry in REGISTRIES.items():
        for name in registry.list(aliases=True):
            names.setdefault(name, f"{kind} {name!r}")
        for prefix in registry.namespaces():
            names.setdefault(prefix, f"{kind} namespace '{prefix}:'")
    for name in EVALUATIONS.names():
        names.setdefault(name, f"evaluation kind {name!r}")
    return names


def namespaces() -> set[str]:
    return {prefix for registry in REGISTRIES.values() for prefix in registry.namespaces()}


def vocabulary() -> set[str]:
    """The contract's own words (see the module docstring)."""
    import robustbench_gan.contract as contract

    modules = [
        f"robustbench_gan.contract.{m.name}" for m in pkgutil.iter_modules(contract.__path__)
    ]
    words = set(REGISTRIES)
    for module_name in (*modules, *VOCABULARY_MODULES):
        module = importlib.import_module(module_name)
        for attr, value in vars(module).items():
            if not VOCABULARY_CONSTANT.fullmatch(attr):
                continue
            values = [value] if isinstance(value, str) else value
            if isinstance(values, (list, tuple, set, frozenset)):
                words |= {v for v in values if isinstance(v, str)}
    return words


def plugin_folders() -> set[Path]:
    from robustbench_gan.contract.kinds import BUILTINS

    packages = {registry.builtins for registry in REGISTRIES.values()} | {BUILTINS}
    return {PACKAGE.parent.joinpath(*p.split(".")) for p in packages}


def core_modules() -> list[Path]:
    plugins = plugin_folders()
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(folder in path.parents for folder in plugins)
    ]


def module_name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")


def code_strings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant of the module that is not a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def named(text: str, names: dict[str, str], prefixes: set[str]) -> list[str]:
    """The plugin names ``text`` names (see the module docstring for how)."""
    found = [name for name in names if text == name or text.startswith(f"{name}:")]
    found += [
        prefix
        for prefix in prefixes
        if prefix not in found and re.search(rf"(?<![\w.-]){re.escape(prefix)}:", text)
    ]
    return found


def offenders() -> list[tuple[str, int, str, str]]:
    """(module, line, string, plugin name) of every plugin name in the core's code."""
    names = {k: v for k, v in plugin_names().items() if k not in vocabulary()}
    prefixes = namespaces() & set(names)
    found = []
    for path in core_modules():
        for line, text in code_strings(path):
            for name in named(text, names, prefixes):
                found.append((module_name(path), line, text, name))
    return found


def test_the_core_names_no_plugin():
    names = plugin_names()
    new = [o for o in offenders() if (o[0], o[3]) not in KNOWN]
    assert not new, "the core names plugins (ask the registry instead):\n" + "\n".join(
        f"  {module}:{line}: {text[:70]!r} names the {names[name]}"
        for module, line, text, name in new
    )


def test_known_offenders_are_still_there():
    """An entry of KNOWN that the restructure removed is taken off the list."""
    present = {(module, name) for module, _, _, name in offenders()}
    assert not KNOWN - present, f"no longer in the core, remove from KNOWN: {KNOWN - present}"


def test_the_check_sees_what_it_must(tmp_path):
    """The scan finds a name, an f-string's scheme prefix and help text naming a namespace,
    and skips docstrings and the contract's own words."""
    names = {k: v for k, v in plugin_names().items() if k not in vocabulary()}
    prefixes = namespaces()
    assert prefixes >= {"robustbench", "art"}
    assert named("pgd", names, prefixes) == ["pgd"]
    assert named("robustbench:", names, prefixes) == ["robustbench"]
    assert named("MODULE:ATTR | torchvision:NAME", names, prefixes) == ["torchvision"]
    assert named("a pgd attack", names, prefixes) == []
    assert {"attack", "worst_case", "gan_metrics", "target"} <= vocabulary()
    assert "attack" not in names and "digits" in names

    source = '"""pgd in a docstring."""\nX = "digits"\nY = f"robustbench:{X}"\n'
    path = tmp_path / "module.py"
    path.write_text(source, encoding="utf-8")
    seen = [(line, n) for line, t in code_strings(path) for n in named(t, names, prefixes)]
    assert seen == [(2, "digits"), (3, "robustbench")]


def test_the_core_is_what_it_says():
    core = {path.relative_to(PACKAGE).parts[0] for path in core_modules()}
    assert set(CORE_FOLDERS) <= core and {"api.py", "registry.py", "cli.py"} <= core
    assert not core & {"attacks", "defenses", "gans", "models", "data", "evaluations"}
    assert "indicators" in core  # the indicators name no attack: their probe is their own
