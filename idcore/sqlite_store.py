"""SQLite back end: one file per node, WAL journal, fsync before a write is acknowledged.

With the change log on (top-level nodes), the `changes` table gets one row per record
written or deleted, inserted in the same transaction as the write itself: the log can
never miss a committed write nor hold one that was rolled back.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from idcore import jsontext
from idcore.identifier import fold
from idcore.store import (
    LOG_ID_META,
    Change,
    ChangeMany,
    LogEntry,
    LogMismatch,
    Record,
    check_contiguous,
    final_state,
    new_log_id,
)
from idcore.values import value_is_public

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    handle TEXT NOT NULL,
    body TEXT NOT NULL,
    public INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_prefix ON records (prefix, key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    body TEXT,
    at REAL NOT NULL
);
"""
MMAP_BYTES = 1 << 30
"""How much of the file each connection reads through a memory map (SQLite's mmap_size).

A resolve reads a few pages of a large file at random: through the map, each is a memory
read instead of a read() call and a copy into the connection's own page cache, and every
connection shares the kernel's copy. Measured on a 10,000-record file: a point SELECT of
a demo record took 31 µs of CPU without the map, 16 µs with it. Writes still go through
the WAL, so durability is as before; beyond this size reads fall back to read().
"""
# Host parameters per SELECT ... IN (...): well below SQLite's limit on every build.
_SELECT_CHUNK = 500
_INSERT_CHANGE = "INSERT INTO changes (seq, key, body, at) VALUES (?, ?, ?, ?)"
_UPSERT = (
    "INSERT OR REPLACE INTO records (key, prefix, handle, body, public) VALUES (?, ?, ?, ?, ?)"
)
# In a UTF-8 database the body is bound as the UTF-8 bytes the JSON encoder makes, cast to
# TEXT: SQLite keeps exactly those bytes as the text, the value a str body gives, without
# decoding them into a str that the sqlite3 module encodes back (a tenth of a batch's time
# in the store for a record of Chinese text).
_UPSERT_UTF8 = (
    "INSERT OR REPLACE INTO records (key, prefix, handle, body, public) "
    "VALUES (?, ?, ?, CAST(? AS TEXT), ?)"
)


def _row(record: Record, utf8: bool) -> tuple[str, str, str, str | bytes, int]:
    # `public`: every value may be read anonymously, so a plain read can answer with the
    # stored values' text as it is (public_values_text), without decoding the record.
    public = all(value_is_public(v) for v in record.values)
    body = record.dumps_utf8() if utf8 else record.dumps()
    return (record.key, record.prefix_key, record.handle, body, int(public))


def _values_text(handle: str, body: str) -> str | None:
    """The `[...]` of a stored body `{"h":<handle>,"v":[...]}`; None if it is not so."""
    head = '{"h":' + jsontext.dumps(handle).decode("utf-8") + ',"v":'
    if body.startswith(head) and body.endswith("]}"):
        return body[len(head) : -1]
    return None


class SQLiteStore:
    """Store on a SQLite file; one connection per thread and per process."""

    def __init__(self, path: Path, *, changelog: bool = False) -> None:
        self.path = Path(path)
        self.changelog = changelog
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        # Fixed when the file was made (this store never sets it): UTF-8 unless someone
        # else made the file otherwise, and then rows are written with str bodies.
        self._utf8 = conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
        columns = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
        if "public" not in columns:
            # A file from before the column: its rows read the general way (NULL).
            conn.execute("ALTER TABLE records ADD COLUMN public INTEGER")
        if changelog:
            self._baseline()

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
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction: committed on exit, rolled back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- change log -------------------------------------------------------------------

    def _log(self, conn: sqlite3.Connection, changes: Iterable[tuple[str, Record | None]]) -> None:
        """Append changes to the log inside the caller's transaction (if the log is on)."""
        if not self.changelog:
            return
        at = time.time()
        rows = [(None, key, None if rec is None else rec.dumps(), at) for key, rec in changes]
        if rows:
            conn.executemany(_INSERT_CHANGE, rows)
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)",
                (LOG_ID_META, new_log_id()),
            )

    def _baseline(self) -> None:
        """A log switched on over existing records starts with one entry per record."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM changes LIMIT 1").fetchone():
                return
            rows = conn.execute("SELECT key, body FROM records ORDER BY key").fetchall()
            self._log(conn, ((k, Record.loads(b)) for k, b in rows))

    def log_id(self) -> str:
        """The history id of the change log (created on first use)."""
        conn = self._conn()
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (LOG_ID_META,)).fetchone()
        if row:
            return str(row[0])
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (LOG_ID_META, new_log_id())
        )
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (LOG_ID_META,)).fetchone()
        return str(row[0])

    def log_position(self) -> tuple[str | None, int]:
        """History id (None before the first) and last seq, in one query."""
        row = (
            self._conn()
            .execute(
                "SELECT (SELECT value FROM meta WHERE name = ?), (SELECT MAX(seq) FROM changes)",
                (LOG_ID_META,),
            )
            .fetchone()
        )
        return row[0], int(row[1] or 0)

    def last_seq(self) -> int:
        """Number of the last logged change (0 for an empty log)."""
        row = self._conn().execute("SELECT MAX(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def last_entry(self) -> LogEntry | None:
        """The last logged change."""
        row = (
            self._conn()
            .execute("SELECT seq, key, body, at FROM changes ORDER BY seq DESC LIMIT 1")
            .fetchone()
        )
        return LogEntry.from_body(*row) if row else None

    def changes_after(self, seq: int, limit: int) -> list[LogEntry]:
        """Up to `limit` logged changes after `seq`, in order."""
        rows = (
            self._conn()
            .execute(
                "SELECT seq, key, body, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, max(limit, 0)),
            )
            .fetchall()
        )
        return [LogEntry.from_body(*r) for r in rows]

    def apply_changes(self, log_id: str, entries: Sequence[LogEntry]) -> int:
        """Apply a source's changes in order, in one transaction with their log entries."""
        self._require_log()
        with self._tx() as conn:
            current = conn.execute(
                "SELECT value FROM meta WHERE name = ?", (LOG_ID_META,)
            ).fetchone()
            last = int(conn.execute("SELECT MAX(seq) FROM changes").fetchone()[0] or 0)
            if current is None and last == 0:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                    (LOG_ID_META, log_id),
                )
            elif current is None or current[0] != log_id:
                raise LogMismatch(
                    f"this store follows history {current[0] if current else None}, not {log_id}"
                )
            todo = [e for e in entries if e.seq > last]
            check_contiguous(todo, last)
            for entry in todo:
                self._apply(conn, entry)
            conn.executemany(_INSERT_CHANGE, [(e.seq, e.key, e.body(), e.at) for e in todo])
            return todo[-1].seq if todo else last

    def _apply(self, conn: sqlite3.Connection, entry: LogEntry) -> None:
        if entry.record is None:
            conn.execute("DELETE FROM records WHERE key = ?", (entry.key,))
        else:
            self._upsert(conn, [entry.record])

    def replace_log(
        self, log_id: str, entries: Sequence[LogEntry], expected: str | None = None
    ) -> None:
        """Become an exact copy of a source's whole log and the records it leaves."""
        self._require_log()
        check_contiguous(entries, 0)
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (LOG_ID_META,)).fetchone()
            if expected is not None and row is not None and row[0] != expected:
                raise LogMismatch(f"this store moved to history {row[0]}, not {expected}")
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM changes")
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'changes'")
            self._upsert(conn, [r for r in final_state(entries).values() if r is not None])
            conn.executemany(_INSERT_CHANGE, [(e.seq, e.key, e.body(), e.at) for e in entries])
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (LOG_ID_META, log_id)
            )

    def _require_log(self) -> None:
        if not self.changelog:
            raise LogMismatch(f"{self.path} has no change log: open it with changelog=True")

    # -- records --------------------------------------------------------------------------

    def get(self, key: str) -> Record | None:
        """The record under a case-folded key."""
        row = self._conn().execute("SELECT body FROM records WHERE key = ?", (key,)).fetchone()
        return Record.loads(row[0]) if row else None

    def public_values_text(self, key: str) -> tuple[bool, str | None]:
        """(found, the JSON text of its values if every one is public, else None)."""
        row = (
            self._conn()
            .execute("SELECT handle, body, public FROM records WHERE key = ?", (key,))
            .fetchone()
        )
        if row is None:
            return False, None
        handle, body, public = row
        return True, (_values_text(handle, body) if public == 1 else None)

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one query."""
        if not keys:
            return []
        found: dict[str, Record] = {}
        conn = self._conn()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _SELECT_CHUNK):
            chunk = unique[start : start + _SELECT_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, body FROM records WHERE key IN ({marks})", chunk
            ).fetchall()
            found.update((k, Record.loads(b)) for k, b in rows)
        return [found.get(k) for k in keys]

    def mutate(self, key: str, change: Change) -> Record | None:
        """Read-change-write under an immediate (write-locked) transaction."""
        with self._tx() as conn:
            row = conn.execute("SELECT body FROM records WHERE key = ?", (key,)).fetchone()
            new = change(Record.loads(row[0]) if row else None)
            if new is None:
                if row:
                    conn.execute("DELETE FROM records WHERE key = ?", (key,))
                    self._log(conn, [(key, None)])
            else:
                self._upsert(conn, [new])
                self._log(conn, [(new.key, new)])
        return new

    def put_many(self, records: Iterable[Record]) -> None:
        """Write many records in one transaction (each record is a single row)."""
        with self._tx() as conn:
            written = list(records)
            self._upsert(conn, written)
            self._log(conn, ((r.key, r) for r in written))

    def _upsert(self, conn: sqlite3.Connection, records: Iterable[Record]) -> None:
        """Write the records' rows (every write path: see _UPSERT_UTF8)."""
        utf8 = self._utf8
        conn.executemany(_UPSERT_UTF8 if utf8 else _UPSERT, [_row(r, utf8) for r in records])

    def mutate_many(self, keys: list[str], change: ChangeMany) -> None:
        """Read, change and write many records in one immediate (write-locked) transaction."""
        unique = list(dict.fromkeys(keys))
        with self._tx() as conn:
            found: dict[str, Record] = {}
            for start in range(0, len(unique), _SELECT_CHUNK):
                chunk = unique[start : start + _SELECT_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, body FROM records WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update((k, Record.loads(b)) for k, b in rows)
            new = change(unique, [found.get(k) for k in unique])
            allowed = set(unique)
            for record in new:
                if record.key not in allowed:
                    raise ValueError(f"mutate_many: {record.handle!r} is not among the keys read")
            self._upsert(conn, new)
            self._log(conn, ((r.key, r) for r in new))

    def delete(self, key: str) -> bool:
        """Remove one record."""
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM records WHERE key = ?", (key,))
            removed = cur.rowcount > 0
            if removed:
                self._log(conn, [(key, None)])
        return removed

    def list_handles(
        self, prefix: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """Count and one sorted page of handles under a prefix."""
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

    # -- meta, health ---------------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        """A node-level setting."""
        row = self._conn().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        """Keep a node-level setting."""
        self._conn().execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value)
        )

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        """Keep several node-level settings in one transaction."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", list(values.items())
            )

    def durability(self) -> dict[str, str]:
        """The journal mode and fsync level every connection uses."""
        conn = self._conn()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = {0: "off", 1: "normal", 2: "full", 3: "extra"}.get(
            int(conn.execute("PRAGMA synchronous").fetchone()[0]), "?"
        )
        return {"backend": "sqlite", "journal_mode": str(mode), "synchronous": sync}

    def ping(self) -> bool:
        """True if the file can be queried."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def clear(self) -> None:
        """Remove all records, settings and logged changes (the next write starts a history)."""
        self.restore((), {})

    def restore(self, records: Iterable[Record], meta: Mapping[str, str]) -> None:
        """Hold exactly `records` and `meta` as a new history, in one transaction."""
        written = list(records)  # built (and signed) before the write lock is taken
        with self._tx() as conn:
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM meta")
            conn.execute("DELETE FROM changes")
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'changes'")
            self._upsert(conn, written)
            self._log(conn, ((r.key, r) for r in written))
            conn.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", list(meta.items())
            )

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
