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

Where ``module:attr`` modules are found is plugin_modules.py's to say (the suite's folder
first, then ``sys.path``, then the working directory).

The core names no plugin: what it needs to know of one is registered with it, a registry's
``default()`` (the dataset of a suite that names none), its ``preset(name)`` (the attack of
``benchmark(attacks="standard")``, with the preset's parameters) and its namespaces' ``about``
line and, for a model zoo, ``target`` reader of ``[[targets]]`` entries.

A plugin may also retire names it no longer answers to (``retired``: old name -> why): naming
one is still an unknown name, reported with the plugin's one line instead of close matches.

``Registry.origin(name)`` says what a cache key must cover for a plugin that is not part of
this project: the sha256 of a ``module:attr`` plugin's source file, or the distribution and
version of an entry-point plugin.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import MappingProxyType
from typing import Any, TypeVar

from .errors import UserError
from .plugin_modules import Folder, find_spec, folders_of, import_module, search_path, source_sha256

T = TypeVar("T", bound=Callable[..., Any])


@dataclass(frozen=True)
class Namespace:
    """The names ``PREFIX:NAME`` of a registry: ``resolve(NAME)`` gives the factory.

    ``about``: what the names are, one line for ``rbg list -v``. ``target``: set for a model
    zoo, whose names are models loaded as they are (a ``[[targets]]`` entry needs no weights
    file): ``target(source, entry, where, folder, dataset)`` gives the entry's
    ``models.pretrained.ModelSource`` completed from the zoo's own keys of ``entry`` (the
    suite file's ``folder``, the suite's ``dataset``), or raises UserError at ``where``.
    """

    prefix: str
    resolve: Callable[[str], Callable[..., Any]]
    about: str = ""
    target: Callable[..., Any] | None = None


class Registry:
    """Names to factories for one kind of plugin (attack, dataset, ...)."""

    def __init__(
        self, kind: str, *, builtins: str, group: str, accepts: tuple[str, ...] = ()
    ) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._accepts = accepts
        self._factories: dict[str, Callable[..., Any]] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points: dict[str, metadata.EntryPoint] | None = None
        self._namespaces: dict[str, Namespace] = {}
        self._default: str | None = None
        self._presets: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._retired: dict[str, str] = {}
        self._from_entry_points: set[str] = set()
        self._builtins_loaded = False

    search_path = staticmethod(search_path)

    @property
    def builtins(self) -> str:  # the package of the built-in plugins: a plugin folder
        return self._builtins

    def __repr__(self) -> str:
        return f"Registry({self.kind!r})"

    # -- registration -------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        aliases: tuple[str, ...] = (),
        default: bool = False,
        presets: Mapping[str, Mapping[str, Any]] | None = None,
        retired: Mapping[str, str] | None = None,
    ) -> Callable[[T], T]:
        """Decorator: register the decorated factory under ``name`` (see ``add``)."""

        def decorator(factory: T) -> T:
            self.add(
                name, factory, aliases=aliases, default=default, presets=presets, retired=retired
            )
            return factory

        return decorator

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        aliases: tuple[str, ...] = (),
        default: bool = False,
        presets: Mapping[str, Mapping[str, Any]] | None = None,
        retired: Mapping[str, str] | None = None,
    ) -> None:
        """Register ``factory``; a name (or alias) that is already taken is an error.

        ``default``: the plugin used where the user names none (``default()``), at most one
        per registry. ``presets``: preset name -> the parameters it sets, so that the core
        can offer a named setting without naming the plugin (``preset(name)``). ``retired``:
        names the plugin no longer answers to -> one line saying why (a rename), given in
        place of close matches when one is asked for; a retired name is taken too.
        """
        for key in (name, *aliases, *(retired or {})):
            if key in self._factories or key in self._aliases or key in self._retired:
                raise ValueError(f"{self.kind} {key!r} is already registered")
        if default and self._default is not None:
            raise ValueError(f"{self.kind} {self._default!r} is already the default")
        taken = sorted(set(presets or {}) & set(self._presets))
        if taken:
            raise ValueError(f"{self.kind} preset {taken[0]!r} is already registered")
        self._factories[name] = factory
        for alias in aliases:
            self._aliases[alias] = name
        if default:
            self._default = name
        for preset, params in (presets or {}).items():
            self._presets[preset] = (name, MappingProxyType(dict(params)))
        self._retired.update(retired or {})

    def add_namespace(
        self,
        prefix: str,
        resolve: Callable[[str], Callable[..., Any]],
        *,
        about: str = "",
        target: Callable[..., Any] | None = None,
    ) -> None:
        """Names ``prefix:NAME`` are resolved by ``resolve(NAME)`` (e.g. a library adapter);
        ``about`` and ``target``: see ``Namespace``."""
        if prefix in self._namespaces:
            raise ValueError(f"{self.kind} namespace {prefix!r} is already registered")
        self._namespaces[prefix] = Namespace(prefix, resolve, about, target)

    def namespaces(self) -> list[str]:
        self._load_builtins()
        return sorted(self._namespaces)

    def namespace(self, name: str) -> Namespace | None:
        """The namespace of a ``prefix:NAME`` name (``name`` may be the bare prefix), or None."""
        self._load_builtins()
        return self._namespaces.get(name.partition(":")[0])

    def default(self) -> str:
        """The plugin registered with ``default=True``; UserError when none is."""
        self._load_builtins()
        if self._default is None:
            raise UserError(f"no default {self.kind} is registered: name one")
        return self._default

    def presets(self) -> list[str]:
        """The names of the presets the plugins registered, sorted."""
        self._load_builtins()
        return sorted(self._presets)

    def preset(self, name: str) -> tuple[str, Mapping[str, Any]] | None:
        """The plugin registered with preset ``name`` and the parameters it sets, or None."""
        self._load_builtins()
        return self._presets.get(name)

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

    def aliases(self, name: str) -> list[str]:
        """The other names ``name`` is accepted under."""
        self._load_builtins()
        return sorted(alias for alias, target in self._aliases.items() if target == name)

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
                return self._namespaces[prefix].resolve(rest)
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
        "version": ...}``. None for namespaces (``art:``, ...) and built-in plugins, except one
        whose results changed: its factory's ``revision`` (an int above 0), as
        ``{"revision": "N"}``, so that its stored results are computed again.
        """
        if ":" in name:
            module_name = name.partition(":")[0]
            if module_name in self.namespaces():
                return None
            spec = find_spec(module_name, folders_of(search), self.kind)
            return {"module": module_name, "sha256": source_sha256(spec)}
        key = self.canonical(name)
        if key in self._factories and key not in self._from_entry_points:
            revision = getattr(self._factories[key], "revision", 0)
            return {"revision": str(revision)} if revision else None
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
        self._load_builtins()
        if name in self._retired:  # a plugin's old name: its one line says what it is now
            return UserError(f"unknown {self.kind} {name!r}: {self._retired[name]}")
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
            obj: Any = import_module(module_name, folders_of(search), self.kind)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"cannot import {self.kind} {spec!r}: {exc}") from exc
        if not callable(obj):
            raise UserError(f"{self.kind} {spec!r} is not callable")
        if self._accepts and not self._is_plugin(obj):
            bases = ", ".join(a.rpartition(":")[2] for a in self._accepts)
            raise UserError(
                f"{spec!r} was not called: a module:attr {self.kind} must be a subclass of "
                f"{bases} or a function marked @robustbench_gan.plugin"
            )
        return obj

    def _is_plugin(self, obj: Any) -> bool:
        """A class of one of the kinds this registry builds, or a factory marked ``@plugin``."""
        if getattr(obj, PLUGIN_MARK, False) is True:
            return True
        if not isinstance(obj, type):
            return False
        for ref in self._accepts:
            module, _, attr = ref.partition(":")
            if issubclass(obj, getattr(importlib.import_module(module), attr)):
                return True
        return False


PLUGIN_MARK = "__robustbench_gan_plugin__"


def plugin(factory: T) -> T:
    """Mark a factory function as a plugin, so a suite may name it as ``module:attr``.

    A ``module:attr`` name imports and calls code, so the resolved object must be a class of
    the registry's kind (an Attack, an ``nn.Module`` classifier, a GAN, a Defense) or a
    function marked with this decorator; anything else (``subprocess:run``) is refused
    before it is called.
    """
    setattr(factory, PLUGIN_MARK, True)
    return factory


# a dataset has no base class: a module:attr dataset is a function marked @plugin
DATASETS = Registry(
    "dataset",
    builtins="robustbench_gan.data",
    group="robustbench_gan.datasets",
    accepts=("robustbench_gan.data.split:DataSplit",),
)
CLASSIFIERS = Registry(
    "classifier",
    builtins="robustbench_gan.models",
    group="robustbench_gan.classifiers",
    accepts=("torch.nn:Module",),
)
GENERATORS = Registry(
    "generator",
    builtins="robustbench_gan.gans",
    group="robustbench_gan.generators",
    accepts=("robustbench_gan.gans.base:GAN",),
)
ATTACKS = Registry(
    "attack",
    builtins="robustbench_gan.attacks",
    group="robustbench_gan.attacks",
    accepts=("robustbench_gan.attacks.base:Attack",),
)
DEFENSES = Registry(
    "defense",
    builtins="robustbench_gan.defenses",
    group="robustbench_gan.defenses",
    accepts=("robustbench_gan.defenses.base:Defense",),
)
_C = "robustbench_gan.corruptions"  # CORRUPTIONS is not in REGISTRIES: see corruptions/
CORRUPTIONS = Registry("corruption", builtins=_C, group=_C, accepts=(f"{_C}.base:Corruption",))

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
