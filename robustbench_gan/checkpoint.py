"""Atomic, verified files: written under a temporary name and renamed; sha256 checked on load."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .safe_load import load_tensors


class CorruptFileError(Exception):
    """A file's content does not match the sha256 recorded when it was written."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves half a file under that name.
    The file gets the permissions of any new file (0644 under the usual umask), not the
    0600 of a temporary one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stage(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file next to ``path`` (fsynced), with a new file's
    permissions; the caller renames it into place."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def confined(root: str | os.PathLike[str], name: str | os.PathLike[str]) -> Path:
    """``root / name``, after checking that the resolved path lies inside the resolved
    ``root`` (a name holding ``..`` or an absolute path would write elsewhere)."""
    base = Path(root).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise UserError(f"refusing to write {name!s}: it would land outside {root}")
    return path


def current_umask() -> int:
    """The process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def tensors_to_bytes(obj: Any) -> bytes:
    """Serialize a (nested) dict of tensors and plain values with torch.save."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def load_verified(path: Path, sha256: str) -> Any:
    """Load a torch file after checking its sha256; only tensors and plain types (weights_only)."""
    data = Path(path).read_bytes()
    actual = sha256_bytes(data)
    if actual != sha256:
        raise CorruptFileError(f"{path}: sha256 {actual[:12]}... does not match {sha256[:12]}...")
    return load_tensors(data, path=path)
