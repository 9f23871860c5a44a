"""Where ``module:attr`` plugins come from: finding and importing their modules.

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
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType

from .errors import UserError

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


def folders_of(search: Sequence[Folder]) -> tuple[Path, ...]:
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


def find_spec(module_name: str, folders: Sequence[Path], kind: str) -> ModuleSpec:
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


def source_sha256(spec: ModuleSpec) -> str:
    if not (spec.origin and spec.has_location and Path(spec.origin).is_file()):
        return ""
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def import_module(module_name: str, folders: Sequence[Path], kind: str) -> ModuleType:
    """Import ``module_name``, from the first of ``folders`` that holds it if any."""
    folder = _providing_folder(module_name, folders)
    if folder is None:
        return importlib.import_module(module_name)
    top = module_name.partition(".")[0]
    spec = PathFinder.find_spec(top, [str(folder)])
    assert spec is not None  # _providing_folder found it there
    loaded, sha = sys.modules.get(top), source_sha256(spec)
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
