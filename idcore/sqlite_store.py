"""SQLite back end: one file per node, WAL journal, fsync before a write is acknowledged."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from idcore.store import Change, Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    handle TEXT NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_prefix ON records (prefix, key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteStore:
    """Store on a SQLite file; one connection per thread and per process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # Connections must not cross a fork (gunicorn workers) or a thread.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write
            # survives a power loss, not just a process crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def get(self, key: str) -> Record | None:
        """The record under a case-folded key."""
        row = self._conn().execute("SELECT body FROM records WHERE key = ?", (key,)).fetchone()
        return Record.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one query."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = (
            self._conn()
            .execute(f"SELECT key, body FROM records WHERE key IN ({marks})", keys)
            .fetchall()
        )
        found = {k: Record.loads(b) for k, b in rows}
        return [found.get(k) for k in keys]

    def mutate(self, key: str, change: Change) -> Record | None:
        """Read-change-write under an immediate (write-locked) transaction."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT body FROM records WHERE key = ?", (key,)).fetchone()
            new = change(Record.loads(row[0]) if row else None)
            if new is None:
                conn.execute("DELETE FROM records WHERE key = ?", (key,))
            else:
                self._write(conn, new)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return new

    def put_many(self, records: Iterable[Record]) -> None:
        """Write many records in one transaction (each record is a single row)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                self._write(conn, record)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _write(conn: sqlite3.Connection, record: Record) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO records (key, prefix, handle, body) VALUES (?, ?, ?, ?)",
            (record.key, record.prefix_key, record.handle, record.dumps()),
        )

    def delete(self, key: str) -> bool:
        """Remove one record."""
        cur = self._conn().execute("DELETE FROM records WHERE key = ?", (key,))
        return cur.rowcount > 0

    def list_handles(
        self, prefix: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """Count and one sorted page of handles under a prefix."""
        from idcore.identifier import fold

        conn = self._conn()
        pkey = fold(prefix)
        total = conn.execute("SELECT COUNT(*) FROM records WHERE prefix = ?", (pkey,)).fetchone()[0]
        rows = conn.execute(
            "SELECT handle FROM records WHERE prefix = ? ORDER BY key LIMIT ? OFFSET ?",
            (pkey, -1 if limit is None else limit, offset),
        ).fetchall()
        return int(total), [r[0] for r in rows]

    def count(self) -> int:
        """Number of records."""
        return int(self._conn().execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def get_meta(self, name: str) -> str | None:
        """A node-level setting."""
        row = self._conn().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        """Keep a node-level setting."""
        self._conn().execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)
        )

    def ping(self) -> bool:
        """True if the file can be queried."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def clear(self) -> None:
        """Remove all records and settings."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM records")
        conn.execute("DELETE FROM meta")
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
