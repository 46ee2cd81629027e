"""The Store protocol every back end implements, and the factory that picks one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from idcore import jsontext
from idcore.identifier import fold


@dataclass(slots=True)
class Record:
    """A stored handle record: the handle as first written and its wire values."""

    handle: str
    values: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Case-folded lookup key."""
        return fold(self.handle)

    @property
    def prefix_key(self) -> str:
        """Case-folded prefix, used to list handles by prefix."""
        return fold(self.handle.split("/", 1)[0])

    def dumps(self) -> str:
        """Serialise for storage."""
        return self.dumps_utf8().decode("utf-8")

    def dumps_utf8(self) -> bytes:
        """dumps() as the UTF-8 bytes the encoder makes, without a round trip through a str."""
        # Raw UTF-8: escaping Chinese text costs 6 bytes a character in every store.
        return jsontext.dumps({"h": self.handle, "v": self.values})

    @classmethod
    def loads(cls, blob: str | bytes) -> Record:
        """Deserialise from storage."""
        raw = jsontext.loads(blob)
        return cls(handle=raw["h"], values=raw["v"])


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One change in a store's change log: the record now under `key`, or None if deleted."""

    seq: int
    key: str
    record: Record | None
    at: float

    def to_json(self) -> dict[str, Any]:
        """The wire form of the replication feed."""
        record = None
        if self.record is not None:
            record = {"handle": self.record.handle, "values": self.record.values}
        return {"seq": self.seq, "key": self.key, "record": record, "at": self.at}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LogEntry:
        """Read the wire form; ValueError (or KeyError/TypeError) if it is malformed."""
        record = raw["record"]
        rec = None if record is None else Record(str(record["handle"]), list(record["values"]))
        entry = cls(int(raw["seq"]), str(raw["key"]), rec, float(raw["at"]))
        if entry.seq < 1 or (rec is not None and rec.key != entry.key):
            raise ValueError(f"malformed change {entry.seq}: key {entry.key!r}")
        return entry

    def body(self) -> str | None:
        """The record as stored (Record.dumps), None for a deletion."""
        return None if self.record is None else self.record.dumps()

    @classmethod
    def from_body(cls, seq: int, key: str, body: str | None, at: float) -> LogEntry:
        """Rebuild from the stored columns."""
        return cls(seq, key, None if body is None else Record.loads(body), at)


class LogMismatch(Exception):
    """Changes cannot be applied: another history, a gap, or a store without a change log."""


LOG_ID_META = "changelog.id"
"""Meta name of the change log's history id (a new id means a new, unrelated history)."""

AppendFsync = Literal["everysec", "always", "server"]
"""Redis AOF policy a node asks for: fsync every second, at every write, or leave the server be."""


def new_log_id() -> str:
    """A fresh history id."""
    return uuid.uuid4().hex


def final_state(entries: Iterable[LogEntry]) -> dict[str, Record | None]:
    """What a log leaves under each key: the last change to it wins."""
    state: dict[str, Record | None] = {}
    for entry in entries:
        state[entry.key] = entry.record
    return state


def check_contiguous(entries: Sequence[LogEntry], after: int) -> None:
    """LogMismatch unless the entries are numbered after+1, after+2, ... without a gap."""
    for offset, entry in enumerate(entries, start=1):
        if entry.seq != after + offset:
            raise LogMismatch(
                f"change {entry.seq} does not follow {after + offset - 1}: the log has a gap"
            )


Change = Callable[[Record | None], Record | None]
"""Given the current record (or None), return the new record, or None to delete it."""

ChangeMany = Callable[[list[str], list[Record | None]], list[Record]]
"""Given keys and their current records (None if absent), return the records to write.

Each returned record must be stored under one of the given keys; keys it does not
return are left as they are.
"""


@runtime_checkable
class Store(Protocol):
    """Where a node keeps its records: durable before any write is acknowledged.

    With `changelog` on (top-level nodes), every write also appends to a durable change
    log in the same transaction: one LogEntry per record written or deleted, numbered
    1, 2, 3, ... without gaps. The log is the replication feed a backup follows; it
    belongs to one history, named by `log_id()` (a new id after `clear()` or promotion).
    """

    changelog: bool

    def get(self, key: str) -> Record | None:
        """The record stored under a case-folded key, or None."""
        ...

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one round trip, in the order asked."""
        ...

    def mutate(self, key: str, change: Change) -> Record | None:
        """Atomically read, change and write one record; an exception leaves it untouched."""
        ...

    def put_many(self, records: Iterable[Record]) -> None:
        """Write many whole records (seed and batch); each one is all-or-nothing."""
        ...

    def mutate_many(self, keys: list[str], change: ChangeMany) -> None:
        """Read several records and write what `change` returns, with no writer in between.

        SQLite calls `change` once with every key, in one transaction. Redis calls it once
        per hash-slot group (the keys of one prefix), possibly more than once when another
        writer gets in first; so `change` must treat keys independently and have no side
        effects beyond its result. An exception leaves the keys of its call untouched.
        """
        ...

    def delete(self, key: str) -> bool:
        """Remove a record; False if there was none."""
        ...

    def list_handles(
        self, prefix: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """Total count and one page of handles under exactly this prefix, sorted."""
        ...

    def count(self) -> int:
        """Number of records stored."""
        ...

    def get_meta(self, name: str) -> str | None:
        """A node-level setting kept with the data (e.g. seed state)."""
        ...

    def set_meta(self, name: str, value: str) -> None:
        """Keep a node-level setting with the data."""
        ...

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        """Keep several node-level settings at once (all or none)."""
        ...

    def log_id(self) -> str:
        """The id of the history in the change log (created on first use)."""
        ...

    def last_seq(self) -> int:
        """Number of the last change in the log; 0 if it is empty."""
        ...

    def log_position(self) -> tuple[str | None, int]:
        """History id (None before the first) and last seq, read together: every change moves it."""
        ...

    def last_entry(self) -> LogEntry | None:
        """The last change in the log, or None."""
        ...

    def changes_after(self, seq: int, limit: int) -> list[LogEntry]:
        """Up to `limit` changes numbered after `seq`, in order."""
        ...

    def apply_changes(self, log_id: str, entries: Sequence[LogEntry]) -> int:
        """Follower: apply changes of history `log_id` in order; the new last seq.

        Idempotent: entries at or below the last seq are skipped. The records and the
        log entries (same numbers) are written in one transaction, so the position is
        never ahead of or behind the data. An empty store adopts `log_id`; a store on
        another history (promoted, reset) or entries that leave a gap raise LogMismatch.
        """
        ...

    def replace_log(
        self, log_id: str, entries: Sequence[LogEntry], expected: str | None = None
    ) -> None:
        """Follower full resync: records and log become exactly those of the source's log.

        `entries` is the source's whole log, numbered from 1; in one transaction. With
        `expected`, LogMismatch if the store is meanwhile on another history than that
        one (a promotion must never be overwritten by a late resync).
        """
        ...

    def durability(self) -> dict[str, str]:
        """How writes are made durable (journal and fsync settings), for status pages."""
        ...

    def ping(self) -> bool:
        """True if the back end answers."""
        ...

    def clear(self) -> None:
        """Remove every record, setting and logged change of this node (a new history)."""
        ...

    def restore(self, records: Iterable[Record], meta: Mapping[str, str]) -> None:
        """Hold exactly `records` and settings `meta`, as a new history (a reset to a seed).

        A record that is in `records` is never missing to a concurrent reader: it holds
        its old body or its new one. Records not in `records` are gone afterwards.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(
    kind: str,
    *,
    namespace: str,
    data_dir: Path,
    redis_url: str | None = None,
    changelog: bool = False,
    appendfsync: AppendFsync = "everysec",
) -> Store:
    """Open the configured back end for one node.

    `changelog` keeps the replication change log (top-level nodes; on Redis it makes
    writes span two hash slots, see redis_store). `appendfsync` is the Redis AOF policy
    the node makes sure of (it never weakens a stricter one already set).
    """
    if kind == "redis":
        from idcore.redis_store import RedisStore

        if not redis_url:
            raise ValueError("store 'redis' needs IDR_REDIS_URL, e.g. redis://127.0.0.1:6379/0")
        return RedisStore(
            redis_url, namespace=namespace, changelog=changelog, appendfsync=appendfsync
        )
    if kind == "sqlite":
        from idcore.sqlite_store import SQLiteStore

        return SQLiteStore(Path(data_dir) / f"{namespace}.sqlite3", changelog=changelog)
    raise ValueError(f"unknown store {kind!r}: choose 'sqlite' or 'redis'")
