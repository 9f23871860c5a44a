"""The result store: one SQLite row per finished cell, artifacts addressed by content.

A row is committed in its own transaction only after every artifact it names
has been written (temporary name, fsync, rename), so a crash at any moment
leaves either a finished cell or none. Artifacts live under
``artifacts/<sha256[:2]>/<sha256>`` and are verified against their name when read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkpoint import CorruptFileError, load_verified, sha256_bytes, sha256_file, write_atomic

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    spec TEXT NOT NULL,
    result TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class CellRecord:
    id: str
    kind: str
    label: str
    spec: dict[str, Any]
    result: dict[str, Any]
    artifacts: dict[str, str]  # artifact name -> sha256
    seconds: float


class Store:
    """SQLite rows plus a content-addressed artifact folder under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "store.sqlite", timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __reduce__(self) -> tuple[type, tuple[Path]]:
        """Pickled as its folder: a worker process opens its own connection."""
        return (Store, (self.root,))

    # -- rows ---------------------------------------------------------------
    def get(self, cell_id: str) -> CellRecord | None:
        row = self.db.execute(
            "SELECT id, kind, label, spec, result, artifacts, seconds FROM cells WHERE id = ?",
            (cell_id,),
        ).fetchone()
        if row is None:
            return None
        return CellRecord(
            id=row[0],
            kind=row[1],
            label=row[2],
            spec=json.loads(row[3]),
            result=json.loads(row[4]),
            artifacts=json.loads(row[5]),
            seconds=row[6],
        )

    def put(self, record: CellRecord) -> None:
        """Commit one finished cell (its artifacts must already be stored)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.kind,
                    record.label,
                    json.dumps(record.spec, sort_keys=True),
                    json.dumps(record.result, sort_keys=True),
                    json.dumps(record.artifacts, sort_keys=True),
                    record.seconds,
                    time.strftime("%Y-%m-%dT%H:%M:%S"),
                ),
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
