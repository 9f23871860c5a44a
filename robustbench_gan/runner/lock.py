"""One run at a time per output folder.

The lock is an ``flock`` on ``<out>/.rbg.lock``: the kernel releases it when the holder
exits, however it exits (kill -9 included), so a lock file left by a dead run is simply
taken over. The file holds the holder's pid, for the message a refused run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".rbg.lock"


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock for the duration; refuse if another run holds it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(
                f"another rbg run (pid {holder}) is writing to {out_dir}; wait for it to "
                "finish or give another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock
