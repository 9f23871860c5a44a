"""The package's floors (docs/architecture.md): every import goes down or stays on its floor,
and no circle of imports spans two packages.

Imports are read from the source with ``ast``: at module level, inside functions and under
``TYPE_CHECKING`` alike, since a lazy import against the flow is still a dependency against
it. The one exception is the package's ``__init__``, whose lazy ``__getattr__`` hands out the
top-level API (``robustbench_gan.benchmark``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "robustbench_gan"

#: floor -> the packages and top-level modules on it, lowest first. A module may import its
#: own floor and the floors below. The pipeline's order is the flow of data: a suite is read,
#: planned and run (runner: plan, executors, store), its results tabulated and written
#: (report), and runs are compared and published across (publish); the kinds of evaluation
#: and the plugins sit below the pipeline, the contract below them.
FLOORS: list[set[str]] = [
    {"errors", "utils", "bounds", "registry", "plugin_modules", "safe_load", "checkpoint",
     "version"},
    {"contract"},
    {"render", "data", "models", "gans", "attacks", "defenses", "indicators", "certify",
     "corruptions"},
    {"evaluations"},
    {"suite"},
    {"report"},
    {"runner"},
    {"publish"},
    {"api", "api_suite", "verify", "cli", "cli_list", "cli_model",
     "cli_reproduce", "cli_audit_attack", "__main__", ""},
]  # fmt: skip


def unit(module: str) -> str:
    """The package or top-level module a module belongs to ("" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor(module: str) -> int:
    name = unit(module)
    for i, members in enumerate(FLOORS):
        if name in members:
            return i
    raise AssertionError(f"{module}: on no floor; add its package to FLOORS")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The project modules ``path`` imports (``from X import y`` counts as X and X.y)."""
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    )
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules}


GRAPH = {
    module_name(path): imports(path)
    for path in sorted(PACKAGE.rglob("*.py"))
    if path != PACKAGE / "__init__.py"  # its lazy __getattr__ hands out the top-level API
}


def test_every_package_is_on_a_floor():
    for module in GRAPH:
        floor(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down_or_stay_on_the_floor(module):
    up = sorted(m for m in GRAPH[module] if floor(m) > floor(module))
    assert not up, f"{module} imports {up} from a floor above its own"


def test_no_circle_spans_two_packages():
    """Strongly connected components of the module graph (Tarjan) stay in one package."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len({unit(m) for m in component}) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, f"circles across packages: {circles}"


def test_the_contract_imports_only_the_floor_below_it():
    for module, found in GRAPH.items():
        if unit(module) == "contract":
            bad = {m for m in found if floor(m) > 1}
            assert not bad, f"{module} imports {sorted(bad)}"


def test_the_floors_and_docs_agree():
    """Every floor's packages are named in docs/architecture.md, and the version is one."""
    text = (ROOT / "docs/architecture.md").read_text()
    for members in FLOORS[1:-1]:
        for name in members:
            assert f"`{name}/`" in text, f"docs/architecture.md does not place {name}/"
    from robustbench_gan.version import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_floor_order_is_what_a_package_needs():
    """A sanity check of the table itself: no floor is empty and no name is on two."""
    names = [n for members in FLOORS for n in members]
    assert len(names) == len(set(names)) and all(FLOORS)
    by_package: dict[str, set[int]] = defaultdict(set)
    for module in GRAPH:
        by_package[unit(module)].add(floor(module))
    assert all(len(floors) == 1 for floors in by_package.values())
