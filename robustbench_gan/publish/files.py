"""Writing a published leaderboard's files as one set: all of them or none.

Every file is first written under a temporary name in its own folder; then each is renamed
over its name, the file it replaces kept aside under another name (a hard link) until the
whole set is in place, and stale files are moved aside the same way. A failure on the way
(a full disk, a folder where a file goes, Ctrl-C) puts every file back as it was and removes
the temporary ones and any folder made for them.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..checkpoint import stage
from ..errors import UserError

replace = os.replace  # every rename of a set goes through here (a test breaks one)


def write_set(files: Mapping[Path, bytes], remove: Iterable[Path] = ()) -> None:
    """Write ``files`` (path -> content) and remove the files of ``remove``, all or nothing.
    An OSError is refused in one line naming the file (after everything was put back)."""
    made: list[Path] = []  # folders made here, deepest last
    staged: list[tuple[Path, Path]] = []  # (temporary file, its final name)
    aside: list[tuple[Path, Path | None]] = []  # (a name changed, its old file or None)
    current = Path()
    try:
        for path, data in files.items():
            current = path
            made += make_folders(path.parent)
            staged.append((stage(path, data), path))
        for tmp, path in staged:
            current = path
            aside.append((path, keep_aside(path)))
            replace(tmp, path)
        for path in remove:
            current = path
            old = keep_aside(path)
            aside.append((path, old))
            path.unlink()
    except BaseException as exc:
        put_back(aside)
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            reason = " ".join(str(exc.strerror or exc).split())
            raise UserError(
                f"cannot write ({reason}); nothing was changed", where=str(current)
            ) from None
        raise
    for _, old in aside:
        if old is not None:
            old.unlink(missing_ok=True)


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the folders made, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for folder in reversed(missing):
        folder.mkdir()
        made.append(folder)
    return made


def keep_aside(path: Path) -> Path | None:
    """A second name of the file at ``path`` (a hard link, else a copy) to put it back from;
    None when there is no file there."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(path))
    old = path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")
    try:
        os.link(path, old, follow_symlinks=False)
    except OSError:
        shutil.copy2(path, old, follow_symlinks=False)
    return old


def put_back(aside: list[tuple[Path, Path | None]]) -> None:
    """Undo the renames and removals done so far, last first (as far as possible)."""
    for path, old in reversed(aside):
        try:
            if old is None:
                path.unlink(missing_ok=True)
            else:
                os.replace(old, path)
                old.unlink(missing_ok=True)  # a rename between two links of one file does nothing
        except OSError:
            pass
