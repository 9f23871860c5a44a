"""One run at a time per output folder.

The lock is an ``flock`` on ``<out>/.rbg.lock``: the kernel releases it when the holder
exits, however it exits (kill -9 included), so a lock file left by a dead run is simply
taken over; a run that ends normally removes it. The file holds the holder's pid, for the
message a refused run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import UserError

LOCK_NAME = ".rbg.lock"


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock for the duration; refuse if another run holds it. The
    lock file is removed when the run ends (a kill -9 leaves it, harmlessly)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    handle = acquire(path, out_dir)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still holding the lock: nobody else holds this file
        handle.close()  # closing releases the flock


def acquire(path: Path, out_dir: Path) -> IO[str]:
    """An open, flocked handle on the lock file at ``path``.

    A run that ends removes the file while it holds the lock, so a run that opened the old
    file just before may lock a file no longer at ``path``: it then tries again on the new
    one, and never holds a lock others cannot see.
    """
    for _ in range(100):
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"another rbg run (pid {holder}) is writing to {out_dir}; wait for it to "
                "finish or give another --out"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()
    raise UserError(f"cannot take the lock {path}: it keeps being replaced")
