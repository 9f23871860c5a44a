"""One Registry class and the five registries of the project.

A plugin is any callable (usually a class) that builds the thing from keyword
arguments. Built-in plugins register with a decorator::

    @ATTACKS.register("pgd", aliases=("linf_pgd",))
    class PGD(Attack): ...

A built-in plugin lives in a module of the registry's builtins package
(``robustbench_gan.attacks`` for ATTACKS, ...); every public module of that package
is imported when the registry is first used, so adding a file is enough.

Third-party packages add plugins through entry points, one group per kind
(``robustbench_gan.attacks`` and so on); those are listed by name without
being imported, and imported only when used, so a broken plugin never breaks
``rbg list``. A name of the form ``package.module:attr`` names an unpackaged
plugin and is imported on use, unless its prefix is a namespace of the registry:
``art:FastGradientMethod`` asks the ``art`` namespace of ATTACKS (an adapter) for
the factory of ART's attack of that name.

Where ``module:attr`` modules are found: first in the search folders (``search=`` of
``get``/``origin``, or every ``with Registry.search_path(folder):`` around the call, e.g. the
folder of the suite file that names the plugin), then on ``sys.path`` as usual, then in the
working directory (which a console script such as ``rbg`` does not put on ``sys.path``). A
module found in a search folder is imported with that folder prepended to ``sys.path`` for
the duration of the import only. If a module of the same top-level name was imported before
from another search folder (two suites, each with its own ``my_models.py``), it is replaced in
``sys.modules``, and so is one whose file changed since (so the code that runs is the code
``origin`` hashed); one imported the usual way (site-packages, ``sys.path``) is never
replaced: that is a UserError asking to rename the file.

``Registry.origin(name)`` says what a cache key must cover for a plugin that is not part of
this project: the sha256 of a ``module:attr`` plugin's source file, or the distribution and
version of an entry-point plugin.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from importlib import metadata
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from .errors import UserError

T = TypeVar("T", bound=Callable[..., Any])
Folder = str | os.PathLike[str]

# folders searched first for ``module:attr`` plugins, innermost ``search_path`` first
_SEARCH: ContextVar[tuple[Path, ...]] = ContextVar("robustbench_gan_search", default=())
# top-level module name -> sha256 of its file when it was imported from a search folder
_FROM_SEARCH: dict[str, str] = {}


@contextlib.contextmanager
def search_path(*folders: Folder) -> Iterator[None]:
    """Within the block, ``module:attr`` plugins of every registry are looked up in
    ``folders`` first (before ``sys.path``). Nests; applies to the current thread or asyncio
    task only (a context variable), so concurrent callers do not see each other's folders."""
    token = _SEARCH.set((*(Path(f).resolve() for f in folders), *_SEARCH.get()))
    try:
        yield
    finally:
        _SEARCH.reset(token)


class Registry:
    """Names to factories for one kind of plugin (attack, dataset, ...)."""

    def __init__(self, kind: str, *, builtins: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._factories: dict[str, Callable[..., Any]] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points: dict[str, metadata.EntryPoint] | None = None
        self._namespaces: dict[str, Callable[[str], Callable[..., Any]]] = {}
        self._from_entry_points: set[str] = set()
        self._builtins_loaded = False

    search_path = staticmethod(search_path)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r})"

    # -- registration -------------------------------------------------------
    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator: register the decorated factory under ``name`` (and aliases)."""

        def decorator(factory: T) -> T:
            self.add(name, factory, aliases=aliases)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., Any], *, aliases: tuple[str, ...] = ()) -> None:
        """Register ``factory``; a name (or alias) that is already taken is an error."""
        for key in (name, *aliases):
            if key in self._factories or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._factories[name] = factory
        for alias in aliases:
            self._aliases[alias] = name

    def add_namespace(self, prefix: str, resolve: Callable[[str], Callable[..., Any]]) -> None:
        """Names ``prefix:NAME`` are resolved by ``resolve(NAME)`` (e.g. a library adapter)."""
        if prefix in self._namespaces:
            raise ValueError(f"{self.kind} namespace {prefix!r} is already registered")
        self._namespaces[prefix] = resolve

    def namespaces(self) -> list[str]:
        self._load_builtins()
        return sorted(self._namespaces)

    # -- lookup -------------------------------------------------------------
    def list(self, pattern: str = "*", *, aliases: bool = False) -> list[str]:
        """Sorted names matching a shell-style ``pattern`` (built-ins and entry points)."""
        names = set(self._all_factories()) | set(self._plugin_entry_points())
        if aliases:
            names |= set(self._aliases)
        return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.canonical(name) in self._factories or name in self._plugin_entry_points()

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` (resolves aliases)."""
        self._load_builtins()
        return self._aliases.get(name, name)

    def get(self, name: str, *, search: Sequence[Folder] = ()) -> Callable[..., Any]:
        """The factory registered as ``name``; raises UserError with close matches.

        ``search``: folders where a ``module:attr`` name's module is looked up first.
        """
        if ":" in name:
            prefix, _, rest = name.partition(":")
            if prefix in self.namespaces():
                return self._namespaces[prefix](rest)
            return self._import_attr(name, search)
        key = self.canonical(name)
        if key in self._factories:
            return self._factories[key]
        entry = self._plugin_entry_points().get(key)
        if entry is not None:
            return self._load_entry_point(entry)
        raise self._unknown(name)

    def origin(self, name: str, *, search: Sequence[Folder] = ()) -> dict[str, str] | None:
        """Where the code of a plugin that is not part of this project comes from.

        ``module:attr``: ``{"module": ..., "sha256": ...}`` of the module's source file (a
        package's ``__init__.py``; ``""`` when it has no file), found as ``get`` would find it
        but without importing it. An entry-point plugin: ``{"distribution": ...,
        "version": ...}``. None for built-in plugins and namespaces (``art:``, ...).
        """
        if ":" in name:
            module_name = name.partition(":")[0]
            if module_name in self.namespaces():
                return None
            spec = _find_spec(module_name, _folders(search), self.kind)
            return {"module": module_name, "sha256": _source_sha256(spec)}
        key = self.canonical(name)
        if key in self._factories and key not in self._from_entry_points:
            return None
        entry = self._plugin_entry_points().get(key)
        if entry is None:
            raise self._unknown(name)
        dist = getattr(entry, "dist", None)
        if dist is None:
            return {"entry_point": entry.value}
        return {"distribution": dist.name, "version": dist.version}

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build the plugin ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    # -- internals ----------------------------------------------------------
    def _unknown(self, name: str) -> UserError:
        close = difflib.get_close_matches(name, self.list(aliases=True), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return UserError(f"unknown {self.kind} {name!r}{hint} (see `rbg list {self.kind}s`)")

    def _all_factories(self) -> dict[str, Callable[..., Any]]:
        self._load_builtins()
        return self._factories

    def _load_builtins(self) -> None:
        """Import the builtins package and every public module in it, once.

        Each module registers its plugins on import, so a file dropped into the package
        (say ``attacks/my_attack.py``) is found without an import in its ``__init__``.
        Modules whose name starts with ``_`` are private and skipped; a plain module as
        ``builtins`` is imported alone.
        """
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        package = importlib.import_module(self._builtins)
        prefix = f"{package.__name__}."
        for module in pkgutil.iter_modules(getattr(package, "__path__", ()), prefix):
            if not module.name.removeprefix(prefix).startswith("_"):
                importlib.import_module(module.name)

    def _plugin_entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in metadata.entry_points(group=self.group)}
        return self._entry_points

    def _load_entry_point(self, entry: metadata.EntryPoint) -> Callable[..., Any]:
        try:
            factory = entry.load()
        except Exception as exc:  # a broken third-party plugin is the user's to fix
            raise UserError(
                f"{self.kind} plugin {entry.name!r} ({entry.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if entry.name not in self._factories:
            self._factories[entry.name] = factory
            self._from_entry_points.add(entry.name)
        return factory

    def _import_attr(self, spec: str, search: Sequence[Folder] = ()) -> Callable[..., Any]:
        module_name, _, attr = spec.partition(":")
        try:
            obj: Any = _import_module(module_name, _folders(search), self.kind)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"cannot import {self.kind} {spec!r}: {exc}") from exc
        if not callable(obj):
            raise UserError(f"{self.kind} {spec!r} is not callable")
        return obj


# -- module:attr lookup --------------------------------------------------------
def _folders(search: Sequence[Folder]) -> tuple[Path, ...]:
    return (*(Path(f).resolve() for f in search), *_SEARCH.get())


def _providing_folder(module_name: str, folders: Sequence[Path]) -> Path | None:
    """The folder to import ``module_name`` from, or None to import it the usual way."""
    top = module_name.partition(".")[0]
    for folder in folders:
        if PathFinder.find_spec(top, [str(folder)]) is not None:
            return folder
    if top in sys.modules or importlib.util.find_spec(top) is not None:
        return None
    cwd = Path.cwd()
    return cwd if PathFinder.find_spec(top, [str(cwd)]) is not None else None


def _find_in(folder: Path, module_name: str) -> ModuleSpec | None:
    """The spec of ``module_name`` under ``folder``, found without importing anything."""
    spec, name, locations = None, "", [str(folder)]
    for part in module_name.split("."):
        name = f"{name}.{part}" if name else part
        spec = PathFinder.find_spec(name, locations)
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    return spec


def _find_spec(module_name: str, folders: Sequence[Path], kind: str) -> ModuleSpec:
    """The spec of the module ``_import_module`` would import (parents may be imported)."""
    try:
        folder = _providing_folder(module_name, folders)
        if folder is not None:
            spec = _find_in(folder, module_name)
        else:
            spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise UserError(f"cannot find the module of {kind} {module_name!r}: {exc}") from exc
    if spec is None:
        raise UserError(f"cannot find the module of {kind} {module_name!r}")
    return spec


def _location(spec: ModuleSpec | None) -> str | None:
    """A module's file (or a namespace package's first folder), resolved."""
    if spec is None:
        return None
    if spec.origin and spec.has_location:
        return str(Path(spec.origin).resolve())
    paths = list(spec.submodule_search_locations or [])
    return str(Path(paths[0]).resolve()) if paths else spec.origin


def _source_sha256(spec: ModuleSpec) -> str:
    if not (spec.origin and spec.has_location and Path(spec.origin).is_file()):
        return ""
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def _import_module(module_name: str, folders: Sequence[Path], kind: str) -> ModuleType:
    """Import ``module_name``, from the first of ``folders`` that holds it if any."""
    folder = _providing_folder(module_name, folders)
    if folder is None:
        return importlib.import_module(module_name)
    top = module_name.partition(".")[0]
    spec = PathFinder.find_spec(top, [str(folder)])
    assert spec is not None  # _providing_folder found it there
    loaded, sha = sys.modules.get(top), _source_sha256(spec)
    if loaded is not None:
        same = _location(getattr(loaded, "__spec__", None)) == _location(spec)
        if top not in _FROM_SEARCH and not same:
            raise UserError(
                f"the {kind} module {top!r} in {folder} has the name of a module already "
                f"imported from {getattr(loaded, '__file__', None) or '(built in)'}; rename it"
            )
        if top in _FROM_SEARCH and not (same and _FROM_SEARCH[top] == sha):
            for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
                del sys.modules[key]
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        module = importlib.import_module(module_name)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
    _FROM_SEARCH[top] = sha
    return module


DATASETS = Registry("dataset", builtins="robustbench_gan.data", group="robustbench_gan.datasets")
CLASSIFIERS = Registry(
    "classifier", builtins="robustbench_gan.models", group="robustbench_gan.classifiers"
)
GENERATORS = Registry(
    "generator", builtins="robustbench_gan.gans", group="robustbench_gan.generators"
)
ATTACKS = Registry("attack", builtins="robustbench_gan.attacks", group="robustbench_gan.attacks")
DEFENSES = Registry(
    "defense", builtins="robustbench_gan.defenses", group="robustbench_gan.defenses"
)

REGISTRIES: dict[str, Registry] = {
    r.kind: r for r in (DATASETS, CLASSIFIERS, GENERATORS, ATTACKS, DEFENSES)
}


def list_attacks(pattern: str = "*") -> list[str]:
    return ATTACKS.list(pattern)


def list_classifiers(pattern: str = "*") -> list[str]:
    return CLASSIFIERS.list(pattern)


def list_generators(pattern: str = "*") -> list[str]:
    return GENERATORS.list(pattern)


def list_defenses(pattern: str = "*") -> list[str]:
    return DEFENSES.list(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)
