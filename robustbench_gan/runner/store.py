"""The result store: one SQLite row per finished cell, artifacts addressed by content.

A row is committed in its own transaction only after every artifact it names
has been written (temporary name, fsync, rename), so a crash at any moment
leaves either a finished cell or none. Artifacts live under
``artifacts/<sha256[:2]>/<sha256>`` and are verified against their name when read.
Each row carries the sha256 of its fields: a row that fails it, or does not parse, is
reported and recomputed like a corrupt artifact (rows of stores written before checksums
existed carry none and are read as they are). A file that is not a database is one line.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoint import CorruptFileError, load_verified, sha256_bytes, sha256_file, write_atomic
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


@dataclass(frozen=True)
class CellRecord:
    id: str
    kind: str
    label: str
    spec: dict[str, Any]
    result: dict[str, Any]
    artifacts: dict[str, str]  # artifact name -> sha256
    seconds: float


def row_checksum(values: tuple[Any, ...]) -> str:
    """sha256 of a row's stored fields (id to seconds), as its JSON list."""
    return sha256_bytes(json.dumps(list(values)).encode())


class Store:
    """SQLite rows plus a content-addressed artifact folder under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "store.sqlite"
        self.reported: set[str] = set()  # cells whose corrupt rows were reported
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

    def unreadable(self, exc: Exception) -> UserError:
        return UserError(
            f"{self.path} is not a readable result store ({exc}): move it away (finished "
            "cells are then recomputed) or give another --cache-dir"
        )

    def close(self) -> None:
        self.db.close()

    def __reduce__(self) -> tuple[type, tuple[Path]]:
        """Pickled as its folder: a worker process opens its own connection."""
        return (Store, (self.root,))

    # -- rows ---------------------------------------------------------------
    def get(self, cell_id: str) -> CellRecord | None:
        """The finished cell, or None when there is none or its row fails its checksum or
        does not parse (reported once; the cell is then recomputed and its row replaced)."""
        try:
            row = self.db.execute(
                f"SELECT {COLUMNS}, checksum FROM cells WHERE id = ?", (cell_id,)
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
        return CellRecord(
            id=row[0],
            kind=row[1],
            label=row[2],
            spec=spec,
            result=result,
            artifacts=artifacts,
            seconds=row[6],
        )

    def corrupt(self, cell_id: str, why: str) -> None:
        """Report a row that cannot be trusted; None makes the executor recompute the cell."""
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
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                f"INSERT OR REPLACE INTO cells ({COLUMNS}, finished_at, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, time.strftime("%Y-%m-%dT%H:%M:%S"), row_checksum(values)),
            )

    def delete(self, cell_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM cells WHERE id = ?", (cell_id,))

    # -- artifacts ----------------------------------------------------------
    def artifact_path(self, sha256: str) -> Path:
        return self.root / "artifacts" / sha256[:2] / sha256

    def put_artifact(self, data: bytes) -> str:
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
        """True when every artifact of ``record`` exists and matches its sha256."""
        for sha in record.artifacts.values():
            path = self.artifact_path(sha)
            if not path.exists() or sha256_file(path) != sha:
                return False
        return True
