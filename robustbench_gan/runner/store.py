"""The result store: one SQLite row per finished cell, artifacts addressed by content.

A row is committed in its own transaction only after every artifact it names
has been written (temporary name, fsync, rename), so a crash at any moment
leaves either a finished cell or none. Artifacts live under
``artifacts/<sha256[:2]>/<sha256>`` and are verified against their name when read.
Each row carries the sha256 of its fields: a row that fails it, or does not parse, is
reported and recomputed like a corrupt artifact (rows of stores written before checksums
existed carry none and are read as they are). A file that is not a database is one line.

``rbg report`` opens stores read-only (``read_only_stores``): nothing is created, not even an
empty store, and a result that cannot be used as stored is an error saying what to run, since
nothing is recomputed. Opening a store for writing removes the jobs folders that runs killed
with kill -9 left under it (pool.sweep_stale).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..checkpoint import CorruptFileError, load_verified, sha256_bytes, sha256_file, write_atomic
from ..contract.cells import CellRecord
from ..errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    spec TEXT NOT NULL,
    result TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished_at TEXT NOT NULL,
    checksum TEXT
)
"""
COLUMNS = "id, kind, label, spec, result, artifacts, seconds"
# in ``read_only_stores``: what to run to recompute a result (stores then open read-only)
_READ_ONLY: ContextVar[str | None] = ContextVar("rbg_read_only_stores", default=None)


@contextmanager
def read_only_stores(hint: str) -> Iterator[None]:
    """Within the block, every Store opens read-only (``rbg report``): a missing store reads
    as an empty one and stays missing, and an unusable result is a UserError ending with
    ``hint`` (what to run to recompute it)."""
    token = _READ_ONLY.set(hint)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def row_checksum(values: tuple[Any, ...]) -> str:
    """sha256 of a row's stored fields (id to seconds), as its JSON list."""
    return sha256_bytes(json.dumps(list(values)).encode())


class Store:
    """SQLite rows plus a content-addressed artifact folder under ``root``."""

    def __init__(self, root: str | Path, *, sweep: bool = True) -> None:
        self.root = Path(root)
        self.path = self.root / "store.sqlite"
        self.reported: set[str] = set()  # cells whose corrupt rows were reported
        self.hint = _READ_ONLY.get()  # read-only when set
        self.checksum = "checksum"  # the column, or NULL in an old store read as it is
        self.db: sqlite3.Connection | None
        if self.hint is not None:
            self.db = self.open_read_only()
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(cells)")}
            if "checksum" not in columns:  # a store written before rows carried one
                self.db.execute("ALTER TABLE cells ADD COLUMN checksum TEXT")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise self.unreadable(exc) from None
        if sweep:  # not in a worker process: its driver's store is swept already
            from .pool import sweep_stale

            sweep_stale(self.root)

    def open_read_only(self) -> sqlite3.Connection | None:
        """The database without writing a byte: None when there is none (or no table); with
        SQLite's ``immutable`` flag when no writer has a write-ahead log open (``mode=ro``
        would leave -wal and -shm files behind), else ``mode=ro`` on the writer's files."""
        if not self.path.is_file():
            return None
        wal, shm = (self.path.with_name(self.path.name + end) for end in ("-wal", "-shm"))
        flag = "mode=ro" if wal.exists() and shm.exists() else "immutable=1"
        try:
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?{flag}", uri=True, timeout=60,
                isolation_level=None,
            )  # fmt: skip
        except sqlite3.Error as exc:
            raise self.unreadable(exc) from None
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(cells)")}
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self.unreadable(exc) from None
        if not columns:  # no cells table: nothing stored
            db.close()
            return None
        if "checksum" not in columns:
            self.checksum = "NULL"
        return db

    def writable(self) -> sqlite3.Connection:
        if self.db is None or self.hint is not None:
            raise RuntimeError(f"the store {self.root} is open read-only")
        return self.db

    def unreadable(self, exc: Exception) -> UserError:
        return UserError(
            f"{self.path} is not a readable result store ({exc}): move it away (finished "
            "cells are then recomputed) or give another --cache-dir"
        )

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        """Pickled as its folder: a worker process opens its own connection."""
        return (reopened, (self.root,))

    # -- rows ---------------------------------------------------------------
    def get(self, cell_id: str) -> CellRecord | None:
        """The finished cell, or None when there is none or its row fails its checksum or
        does not parse (reported once; the cell is then recomputed and its row replaced).
        Read-only, a result this version does not read is None too, silently."""
        if self.db is None:
            return None
        try:
            row = self.db.execute(
                f"SELECT {COLUMNS}, {self.checksum} FROM cells WHERE id = ?", (cell_id,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(exc) from None
        if row is None:
            return None
        if row[7] is not None and row[7] != row_checksum(row[:7]):
            return self.corrupt(cell_id, "its checksum does not match")
        try:
            spec, result, artifacts = (json.loads(text) for text in row[3:6])
        except (json.JSONDecodeError, TypeError) as exc:
            return self.corrupt(cell_id, f"it does not parse ({exc})")
        record = CellRecord(
            id=row[0],
            kind=row[1],
            label=row[2],
            spec=spec,
            result=result,
            artifacts=artifacts,
            seconds=row[6],
        )
        if self.hint is not None:
            from ..contract.kinds import EVALUATIONS

            if not EVALUATIONS.get(record.kind).current(record.result):
                return None  # written by an older version: not stored, as far as reading goes
        return record

    def corrupt(self, cell_id: str, why: str) -> None:
        """Report a row that cannot be trusted; None makes the executor recompute the cell
        (read-only, nothing is recomputed: an error)."""
        if self.hint is not None:
            raise UserError(f"the stored row of cell {cell_id} is corrupt ({why}); {self.hint}",
                            where=str(self.path))  # fmt: skip
        if cell_id not in self.reported:
            self.reported.add(cell_id)
            print(f"rbg: the stored row of cell {cell_id} is corrupt ({why}); recomputing",
                  file=sys.stderr)  # fmt: skip
        return None

    def put(self, record: CellRecord) -> None:
        """Commit one finished cell (its artifacts must already be stored)."""
        values = (
            record.id,
            record.kind,
            record.label,
            json.dumps(record.spec, sort_keys=True),
            json.dumps(record.result, sort_keys=True),
            json.dumps(record.artifacts, sort_keys=True),
            float(record.seconds),
        )
        db = self.writable()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                f"INSERT OR REPLACE INTO cells ({COLUMNS}, finished_at, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, time.strftime("%Y-%m-%dT%H:%M:%S"), row_checksum(values)),
            )

    def delete(self, cell_id: str) -> None:
        db = self.writable()
        with db:
            db.execute("DELETE FROM cells WHERE id = ?", (cell_id,))

    # -- artifacts ----------------------------------------------------------
    def artifact_path(self, sha256: str) -> Path:
        return self.root / "artifacts" / sha256[:2] / sha256

    def put_artifact(self, data: bytes) -> str:
        self.writable()
        sha = sha256_bytes(data)
        path = self.artifact_path(sha)
        if not (path.exists() and sha256_file(path) == sha):
            write_atomic(path, data)
        return sha

    def read_artifact(self, sha256: str) -> bytes:
        data = self.artifact_path(sha256).read_bytes()
        if sha256_bytes(data) != sha256:
            raise CorruptFileError(f"artifact {sha256[:12]}... is corrupt")
        return data

    def load_tensors(self, sha256: str) -> Any:
        """A torch artifact, checked and loaded with weights_only=True."""
        return load_verified(self.artifact_path(sha256), sha256)

    def artifacts_intact(self, record: CellRecord) -> bool:
        """True when every artifact of ``record`` exists and matches its sha256 (read-only,
        one that does not is an error naming the cell and the artifact)."""
        for name, sha in record.artifacts.items():
            path = self.artifact_path(sha)
            if path.exists() and sha256_file(path) == sha:
                continue
            if self.hint is None:
                return False
            state = "corrupt" if path.exists() else "missing"
            raise UserError(
                f"the stored result of {record.label!r} (cell {record.id}) lacks its artifact "
                f"{name!r}: {path} is {state}; {self.hint}",
                where=str(self.root),
            )
        return True


def reopened(root: Path) -> Store:
    """A store unpickled in a worker process (which leaves the sweeping to its driver)."""
    return Store(root, sweep=False)
