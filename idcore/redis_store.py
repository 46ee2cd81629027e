"""Redis back end: hash-tagged keys so that every operation stays within one cluster slot.

Key layout for a node namespace ``ns``::

    idr:{ns:<prefix_key>}:r:<key>   string   Record.dumps() of one record
    idr:{ns:<prefix_key>}:idx       zset     score 0, member "<key>\\x00<handle>"
    idr:{ns}:meta                   hash     node-level settings

A record and its prefix index share a hash tag, so each write is one MULTI/EXEC
in one slot. Index members start with the case-folded key, so lexical order of
the members is the order of the keys (as SQLite's ``ORDER BY key``), and the
handle spelling after the NUL byte is what ``list_handles`` returns.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import cast

import redis
from redis.client import Pipeline

from idcore.identifier import fold
from idcore.store import Change, Record

_SEP = "\x00"
_NAMESPACE = re.compile(r"[0-9A-Za-z._-]+")
_BATCH = 500
_SCAN_COUNT = 1000


def _prefix_of(key: str) -> str:
    """The case-folded prefix of a case-folded key: the part before the first '/'."""
    return key.split("/", 1)[0]


class RedisStore:
    """Store in one Redis database, every key of a node under its namespace."""

    def __init__(self, url: str, namespace: str) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            # ':' would let one namespace's SCAN pattern match another's keys, and
            # braces or glob characters would break the hash tag or the pattern.
            raise ValueError(
                f"redis namespace {namespace!r} must be letters, digits, '.', '_' or '-'"
            )
        self.namespace = namespace
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30
        )
        self._meta = f"idr:{{{namespace}}}:meta"

    def _record_key(self, key: str) -> str:
        """The Redis key holding the record under a case-folded key."""
        return f"idr:{{{self.namespace}:{_prefix_of(key)}}}:r:{key}"

    def _index_key(self, prefix_key: str) -> str:
        """The Redis key of the sorted index of one case-folded prefix."""
        return f"idr:{{{self.namespace}:{prefix_key}}}:idx"

    def _queue_write(self, pipe: Pipeline, record: Record) -> None:
        """Queue the commands that store one record and index its handle spelling."""
        key = record.key
        index = self._index_key(_prefix_of(key))
        pipe.set(self._record_key(key), record.dumps())
        # Drop any older spelling of the same key before indexing this one.
        pipe.zremrangebylex(index, f"[{key}{_SEP}", f"({key}\x01")
        pipe.zadd(index, {f"{key}{_SEP}{record.handle}": 0})

    def _queue_delete(self, pipe: Pipeline, key: str) -> None:
        """Queue the commands that remove one record and its index entry."""
        pipe.delete(self._record_key(key))
        pipe.zremrangebylex(self._index_key(_prefix_of(key)), f"[{key}{_SEP}", f"({key}\x01")

    def get(self, key: str) -> Record | None:
        """The record under a case-folded key."""
        blob = cast("str | None", self._redis.get(self._record_key(key)))
        return Record.loads(blob) if blob is not None else None

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one pipelined round trip."""
        if not keys:
            return []
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self._record_key(key))
            blobs = cast("list[str | None]", pipe.execute())
        return [Record.loads(b) if b is not None else None for b in blobs]

    def mutate(self, key: str, change: Change) -> Record | None:
        """Optimistic read-change-write: WATCH, GET, change, MULTI/EXEC; retried on conflict.

        `change` may run more than once when another writer gets in first, so it
        must not have side effects beyond computing the new record.
        """
        rkey = self._record_key(key)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(rkey)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    blob = cast("str | None", pipe.get(rkey))
                    new = change(Record.loads(blob) if blob is not None else None)
                    pipe.multi()
                    if new is None:
                        self._queue_delete(pipe, key)
                    else:
                        # Like SQLite, the new record is written under its own key; a
                        # `change` that renames the record leaves the old key in place.
                        self._queue_write(pipe, new)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def put_many(self, records: Iterable[Record]) -> None:
        """Write many records: one MULTI/EXEC per slot group (chunked); each record whole."""
        groups: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            groups[_prefix_of(record.key)].append(record)
        for group in groups.values():
            for start in range(0, len(group), _BATCH):
                with self._redis.pipeline(transaction=True) as pipe:
                    for record in group[start : start + _BATCH]:
                        self._queue_write(pipe, record)
                    pipe.execute()

    def delete(self, key: str) -> bool:
        """Remove one record and its index entry atomically."""
        with self._redis.pipeline(transaction=True) as pipe:
            self._queue_delete(pipe, key)
            removed = pipe.execute()
        return int(removed[0]) > 0

    def list_handles(
        self, prefix: str, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """Count and one sorted page of handles under a prefix, from one consistent snapshot."""
        index = self._index_key(fold(prefix))
        start = max(offset, 0)
        if limit is not None and limit == 0:
            return int(self._redis.zcard(index)), []
        stop = -1 if limit is None or limit < 0 else start + limit - 1
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zcard(index)
            pipe.zrange(index, start, stop)
            total, members = pipe.execute()
        return int(total), [m.split(_SEP, 1)[1] for m in cast("list[str]", members)]

    def count(self) -> int:
        """Number of records: the sizes of this namespace's prefix indexes, summed."""
        indexes = list(
            self._redis.scan_iter(match=f"idr:{{{self.namespace}:*}}:idx", count=_SCAN_COUNT)
        )
        if not indexes:
            return 0
        with self._redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.zcard(index)
            sizes = cast("list[int]", pipe.execute())
        return sum(int(s) for s in sizes)

    def get_meta(self, name: str) -> str | None:
        """A node-level setting."""
        return cast("str | None", self._redis.hget(self._meta, name))

    def set_meta(self, name: str, value: str) -> None:
        """Keep a node-level setting."""
        self._redis.hset(self._meta, name, value)

    def ping(self) -> bool:
        """True if the server answers; False (never an exception) if it cannot be reached."""
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    def clear(self) -> None:
        """Remove every record, index and setting of this namespace."""
        batch: list[str] = []
        for name in self._redis.scan_iter(match=f"idr:{{{self.namespace}:*", count=_SCAN_COUNT):
            batch.append(cast("str", name))
            if len(batch) >= _SCAN_COUNT:
                self._redis.unlink(*batch)
                batch.clear()
        if batch:
            self._redis.unlink(*batch)
        self._redis.unlink(self._meta)

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()
