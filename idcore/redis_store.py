"""Redis back end: hash-tagged keys so that every operation stays within one cluster slot.

Key layout for a node namespace ``ns``::

    idr:{ns:<prefix_key>}:r:<key>   string   one record, record_codec.encode() (binary)
    idr:{ns:<prefix_key>}:idx       zset     score 0, member "<key>\\x00<handle>"
    idr:{ns}:meta                   hash     node-level settings
    idr:{ns}:log                    list     change log (only with changelog=True)

A record and its prefix index share a hash tag, so each write is one MULTI/EXEC
in one slot. Index members start with the case-folded key, so lexical order of
the members is the order of the keys (as SQLite's ``ORDER BY key``), and the
handle spelling after the NUL byte is what ``list_handles`` returns.

Records are stored compactly (idcore.record_codec: a format byte, then the record deflated
with a preset dictionary; about 490 bytes for a demo product instead of 6.9 KB of JSON),
and read back through the same codec, which also reads the plain JSON of older stores.
The blob carries an answer index: a plain resolve of a record whose values are all public
(`public_values_text`, as SQLite's `public` column) gets the values' JSON text from it
without decoding the record. It is part of the one blob every write path stores, so it
can never disagree with the record; a blob written before it is decoded the general way.
The client decodes replies as UTF-8 with ``errors="surrogateescape"`` (PEP 383): a binary
blob then arrives as a str that ``.encode("utf-8", "surrogateescape")`` turns back into
exactly its bytes, so one client (one connection pool, one WATCH/MULTI code path, on a
cluster too) serves text and blobs alike, and a reply that is not UTF-8 never raises.

The change log is a list whose element i is change number i + 1 (a JSON object with
the key, the record or null, and the time), pushed in the same MULTI/EXEC as the write
it records; RPUSH numbers changes by position, so they never have gaps. The log lives
in the namespace's own slot, so with the log on, a write spans two slots: fine on one
Redis server, refused by Redis Cluster (CROSSSLOT). The log is therefore opt-in: only
the top-level nodes, whose registry is small, keep one; run them on a single Redis
(or a primary with replicas), not on a cluster.

Redis Cluster: a URL ``redis+cluster://host:port`` (``rediss+cluster://`` with TLS; any
one node of the cluster) opens redis-py's cluster client instead. Every record write is
one MULTI/EXEC in one slot, which a cluster allows; the change log is not (see above), so
a store with ``changelog=True`` on a cluster URL is refused when it is opened.

Durability: the node makes sure the server keeps an append-only file (AOF) with the
asked ``appendfsync`` policy (``everysec`` by default, ``always`` to fsync every write
before it is acknowledged); it never weakens a stricter policy already set, and only
warns when the server refuses CONFIG (a managed Redis: configure it there).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import redis
from redis.client import Pipeline
from redis.cluster import RedisCluster

from idcore.identifier import fold
from idcore.record_codec import decode, encode, public_values_text
from idcore.store import (
    LOG_ID_META,
    AppendFsync,
    Change,
    ChangeMany,
    LogEntry,
    LogMismatch,
    Record,
    check_contiguous,
    final_state,
    new_log_id,
)

log = logging.getLogger("idr.redis")

_SEP = "\x00"
_NAMESPACE = re.compile(r"[0-9A-Za-z._-]+")
_BATCH = 500
_SCAN_COUNT = 1000
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes that name a Redis Cluster, and the plain scheme of one of its nodes."""


def cluster_node_url(url: str) -> str | None:
    """The plain URL of the node named by a `redis+cluster://` URL; None for any other URL."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower()) if sep else None
    return f"{plain}://{rest}" if plain else None


def _connect(url: str) -> tuple[redis.Redis, bool]:
    """A client for a server or (redis+cluster://) a cluster; True if it is a cluster."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "encoding_errors": "surrogateescape",  # binary record blobs: see the module docstring
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
    }
    node = cluster_node_url(url)
    if node is None:
        return redis.Redis.from_url(url, **options), False
    # RedisCluster offers the commands and single-slot transactions (WATCH/MULTI/EXEC)
    # this module uses, with the same signatures: one code path serves both.
    return cast("redis.Redis", RedisCluster.from_url(node, **options)), True


def _prefix_of(key: str) -> str:
    """The case-folded prefix of a case-folded key: the part before the first '/'."""
    return key.split("/", 1)[0]


def _record_of(blob: str | None) -> Record | None:
    """The record a GET reply holds (the blob's bytes, recovered from the str), or None."""
    return None if blob is None else decode(blob.encode("utf-8", "surrogateescape"))


def _entry_blob(key: str, record: Record | None, at: float) -> str:
    """A change as the log list holds it (its number is its position)."""
    body = None if record is None else {"h": record.handle, "v": record.values}
    return json.dumps({"k": key, "r": body, "t": at}, separators=(",", ":"))


def _entry(seq: int, blob: str) -> LogEntry:
    raw = json.loads(blob)
    body = raw["r"]
    record = None if body is None else Record(handle=body["h"], values=body["v"])
    return LogEntry(seq, raw["k"], record, float(raw["t"]))


_FSYNC_STRENGTH = {"no": 0, "everysec": 1, "always": 2}


class RedisStore:
    """Store in one Redis database, every key of a node under its namespace."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        changelog: bool = False,
        appendfsync: AppendFsync | None = None,
    ) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            # ':' would let one namespace's SCAN pattern match another's keys, and
            # braces or glob characters would break the hash tag or the pattern.
            raise ValueError(
                f"redis namespace {namespace!r} must be letters, digits, '.', '_' or '-'"
            )
        if changelog and cluster_node_url(url) is not None:
            raise ValueError(
                f"namespace {namespace!r}: the change log cannot run on a Redis Cluster "
                f"({url}): each write would span two hash slots (CROSSSLOT). Keep nodes with "
                "a change log (the top-level nodes) on a single Redis server (redis://...)"
            )
        self.namespace = namespace
        self._redis, self.cluster = _connect(url)
        self._own = threading.local()
        self._meta = f"idr:{{{namespace}}}:meta"
        self._log = f"idr:{{{namespace}}}:log"
        self.changelog = changelog
        if appendfsync is not None and appendfsync != "server":
            self.ensure_aof(appendfsync)
        if changelog:
            self._baseline()

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
        pipe.set(self._record_key(key), encode(record))
        # Drop any older spelling of the same key before indexing this one.
        pipe.zremrangebylex(index, f"[{key}{_SEP}", f"({key}\x01")
        pipe.zadd(index, {f"{key}{_SEP}{record.handle}": 0})

    def _queue_delete(self, pipe: Pipeline, key: str) -> None:
        """Queue the commands that remove one record and its index entry."""
        pipe.delete(self._record_key(key))
        pipe.zremrangebylex(self._index_key(_prefix_of(key)), f"[{key}{_SEP}", f"({key}\x01")

    def _queue_log(self, pipe: Pipeline, changes: Sequence[tuple[str, Record | None]]) -> None:
        """Queue the log entries of a write in its MULTI (if the log is on)."""
        if not self.changelog or not changes:
            return
        at = time.time()
        pipe.rpush(self._log, *(_entry_blob(k, r, at) for k, r in changes))
        pipe.hsetnx(self._meta, LOG_ID_META, new_log_id())

    # -- change log -------------------------------------------------------------------

    def _baseline(self) -> None:
        """A log switched on over existing records starts with one entry per record."""
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._log)  # type: ignore[no-untyped-call]
                    if int(pipe.llen(self._log)) > 0:
                        return
                    keys = [
                        cast("str", k)
                        for k in pipe.scan_iter(
                            match=f"idr:{{{self.namespace}:*}}:r:*", count=_SCAN_COUNT
                        )
                    ]
                    if not keys:
                        return
                    blobs = cast("list[str | None]", pipe.mget(keys))
                    found = (_record_of(b) for b in blobs)
                    records = sorted((r for r in found if r is not None), key=lambda r: r.key)
                    pipe.multi()
                    self._queue_log(pipe, [(r.key, r) for r in records])
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def log_id(self) -> str:
        """The history id of the change log (created on first use)."""
        current = cast("str | None", self._redis.hget(self._meta, LOG_ID_META))
        if current is not None:
            return current
        self._redis.hsetnx(self._meta, LOG_ID_META, new_log_id())
        return cast("str", self._redis.hget(self._meta, LOG_ID_META))

    def log_position(self) -> tuple[str | None, int]:
        """History id (None before the first) and last seq, in one round trip."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._meta, LOG_ID_META)
            pipe.llen(self._log)
            log_id, length = pipe.execute()
        return cast("str | None", log_id), int(length)

    def last_seq(self) -> int:
        """Number of the last logged change: the length of the log list."""
        return int(self._redis.llen(self._log))

    def last_entry(self) -> LogEntry | None:
        """The last logged change."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.llen(self._log)
            pipe.lindex(self._log, -1)
            size, blob = pipe.execute()
        return _entry(int(size), blob) if blob is not None else None

    def changes_after(self, seq: int, limit: int) -> list[LogEntry]:
        """Up to `limit` logged changes after `seq`: list positions seq .. seq+limit-1."""
        start = max(seq, 0)
        if limit <= 0:
            return []
        blobs = cast("list[str]", self._redis.lrange(self._log, start, start + limit - 1))
        return [_entry(start + i + 1, b) for i, b in enumerate(blobs)]

    def apply_changes(self, log_id: str, entries: Sequence[LogEntry]) -> int:
        """Apply a source's changes in order, with their log entries, in one MULTI/EXEC."""
        self._require_log()
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._log, self._meta)  # type: ignore[no-untyped-call]
                    current = cast("str | None", pipe.hget(self._meta, LOG_ID_META))
                    last = int(pipe.llen(self._log))
                    adopt = current is None and last == 0
                    if not adopt and current != log_id:
                        raise LogMismatch(f"this store follows history {current}, not {log_id}")
                    todo = [e for e in entries if e.seq > last]
                    check_contiguous(todo, last)
                    pipe.multi()
                    for entry in todo:
                        if entry.record is None:
                            self._queue_delete(pipe, entry.key)
                        else:
                            self._queue_write(pipe, entry.record)
                    if todo:
                        pipe.rpush(self._log, *(_entry_blob(e.key, e.record, e.at) for e in todo))
                    if adopt:
                        pipe.hset(self._meta, LOG_ID_META, log_id)
                    pipe.execute()
                    return todo[-1].seq if todo else last
                except redis.WatchError:
                    continue

    def replace_log(
        self, log_id: str, entries: Sequence[LogEntry], expected: str | None = None
    ) -> None:
        """Become an exact copy of a source's whole log and the records it leaves."""
        self._require_log()
        check_contiguous(entries, 0)
        state = final_state(entries)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._log, self._meta)  # type: ignore[no-untyped-call]
                    current = cast("str | None", pipe.hget(self._meta, LOG_ID_META))
                    if expected is not None and current is not None and current != expected:
                        raise LogMismatch(f"this store moved to history {current}, not {expected}")
                    old = [
                        cast("str", k)
                        for k in pipe.scan_iter(
                            match=f"idr:{{{self.namespace}:*", count=_SCAN_COUNT
                        )
                    ]
                    pipe.multi()
                    if old:
                        pipe.unlink(*old)
                    pipe.unlink(self._log)
                    for record in state.values():
                        if record is not None:
                            self._queue_write(pipe, record)
                    for start in range(0, len(entries), _BATCH):
                        chunk = entries[start : start + _BATCH]
                        pipe.rpush(self._log, *(_entry_blob(e.key, e.record, e.at) for e in chunk))
                    pipe.hset(self._meta, LOG_ID_META, log_id)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _require_log(self) -> None:
        if not self.changelog:
            raise LogMismatch(f"namespace {self.namespace!r} has no change log (changelog=True)")

    # -- records --------------------------------------------------------------------------

    def _reader(self) -> redis.Redis:
        """A client with a connection of its own for this thread, for single-key reads.

        Every command through the shared pool checks a connection out and back in, and
        redis-py checks it for stray data with a poll on each checkout: 70 µs of CPU per
        GET here against 39 µs on a connection of its own. A node's threads live long, so
        each keeps one. Not after a fork (the pid changes), nor on a cluster, whose client
        routes each key to its own master.
        """
        if self.cluster:
            return self._redis
        own: tuple[int, redis.Redis] | None = getattr(self._own, "client", None)
        if own is None or own[0] != os.getpid():
            client = redis.Redis(
                connection_pool=self._redis.connection_pool, single_connection_client=True
            )
            own = self._own.client = (os.getpid(), client)
        return own[1]

    def get(self, key: str) -> Record | None:
        """The record under a case-folded key."""
        return _record_of(cast("str | None", self._reader().get(self._record_key(key))))

    def public_values_text(self, key: str) -> tuple[bool, bytes | None]:
        """(found, the UTF-8 JSON text of its values if every one is public, else None)."""
        blob = cast("str | None", self._reader().get(self._record_key(key)))
        if blob is None:
            return False, None
        # Built from the blob's answer index, without decoding the record (record_codec).
        return True, public_values_text(blob.encode("utf-8", "surrogateescape"))

    def get_many(self, keys: list[str]) -> list[Record | None]:
        """Several records in one pipelined round trip."""
        if not keys:
            return []
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self._record_key(key))
            blobs = cast("list[str | None]", pipe.execute())
        return [_record_of(b) for b in blobs]

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
                    new = change(_record_of(blob))
                    if new is None and blob is None:
                        pipe.unwatch()
                        return None  # nothing to delete, nothing to log
                    pipe.multi()
                    if new is None:
                        self._queue_delete(pipe, key)
                        self._queue_log(pipe, [(key, None)])
                    else:
                        # Like SQLite, the new record is written under its own key; a
                        # `change` that renames the record leaves the old key in place.
                        self._queue_write(pipe, new)
                        self._queue_log(pipe, [(new.key, new)])
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
                chunk = group[start : start + _BATCH]
                with self._redis.pipeline(transaction=True) as pipe:
                    for record in chunk:
                        self._queue_write(pipe, record)
                    self._queue_log(pipe, [(r.key, r) for r in chunk])
                    pipe.execute()

    def mutate_many(self, keys: list[str], change: ChangeMany) -> None:
        """Per prefix (one hash slot): WATCH the keys, MGET, change, MULTI/EXEC; retried.

        `change` runs once per prefix group, and again for a group whose keys another
        writer changed meanwhile.
        """
        groups: dict[str, list[str]] = defaultdict(list)
        for key in dict.fromkeys(keys):
            groups[_prefix_of(key)].append(key)
        for group in groups.values():
            rkeys = [self._record_key(k) for k in group]
            allowed = set(group)
            with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(*rkeys)  # type: ignore[no-untyped-call]  # untyped in redis-py
                        # MGET by name: redis-py blocks pipe.mget() on a cluster, though
                        # the keys of one prefix share a slot and MGET is fine there.
                        mget = pipe.execute_command("MGET", *rkeys)  # type: ignore[no-untyped-call]
                        blobs = cast("list[str | None]", mget)
                        current = [_record_of(b) for b in blobs]
                        new = change(group, current)
                        for record in new:
                            if record.key not in allowed:
                                raise ValueError(
                                    f"mutate_many: {record.handle!r} is not among the keys read"
                                )
                        pipe.multi()
                        for record in new:
                            self._queue_write(pipe, record)
                        self._queue_log(pipe, [(r.key, r) for r in new])
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue

    def delete(self, key: str) -> bool:
        """Remove one record and its index entry atomically (and log it, if it existed)."""
        if not self.changelog:
            with self._redis.pipeline(transaction=True) as pipe:
                self._queue_delete(pipe, key)
                removed = pipe.execute()
            return int(removed[0]) > 0
        rkey = self._record_key(key)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(rkey)  # type: ignore[no-untyped-call]
                    if not pipe.exists(rkey):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    self._queue_delete(pipe, key)
                    self._queue_log(pipe, [(key, None)])
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

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

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        """Keep several node-level settings in one command."""
        if values:
            self._redis.hset(self._meta, mapping=dict(values))  # type: ignore[arg-type]

    # -- durability -----------------------------------------------------------------------

    def _config(self) -> dict[str, str]:
        if self.cluster:
            return self._cluster_config()
        raw = cast("dict[str, Any]", self._redis.config_get("append*"))
        return {str(k): str(v) for k, v in raw.items()}

    def _config_set(self, name: str, value: str) -> None:
        if self.cluster:  # redis-py sends CONFIG SET to one node unless told otherwise
            self._redis.config_set(name, value, target_nodes=RedisCluster.ALL_NODES)
        else:
            self._redis.config_set(name, value)

    def _cluster_config(self) -> dict[str, str]:
        """The weakest AOF settings among a cluster's primaries (CONFIG SET reaches all)."""
        per_node = cast(
            "dict[str, dict[str, Any]]",
            self._redis.config_get("append*", target_nodes=RedisCluster.PRIMARIES),
        )
        configs = [{str(k): str(v) for k, v in c.items()} for c in per_node.values()]
        if not configs:
            return {}
        weakest = min(configs, key=lambda c: _FSYNC_STRENGTH.get(c.get("appendfsync", "no"), 0))
        off = [c for c in configs if c.get("appendonly") != "yes"]
        return {**weakest, "appendonly": "no"} if off else weakest

    def ensure_aof(self, appendfsync: AppendFsync) -> None:
        """Make sure the server keeps an AOF fsynced at least as often as asked."""
        try:
            config = self._config()
            if config.get("appendonly") != "yes":
                self._config_set("appendonly", "yes")
            current = config.get("appendfsync", "no")
            if _FSYNC_STRENGTH.get(current, 0) < _FSYNC_STRENGTH[appendfsync]:
                self._config_set("appendfsync", appendfsync)
        except redis.ResponseError as exc:
            log.warning(
                "redis refused CONFIG (%s): make sure it runs with appendonly yes and "
                "appendfsync %s yourself",
                exc,
                appendfsync,
            )
        except (redis.RedisError, OSError) as exc:
            log.warning("could not check the redis AOF settings: %s", exc)

    def durability(self) -> dict[str, str]:
        """The server's AOF settings ("unknown" where CONFIG is refused)."""
        try:
            config = self._config()
        except (redis.RedisError, OSError):
            config = {}
        return {
            "backend": "redis",
            "appendonly": config.get("appendonly", "unknown"),
            "appendfsync": config.get("appendfsync", "unknown"),
        }

    def ping(self) -> bool:
        """True if the server answers; False (never an exception) if it cannot be reached."""
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    def clear(self) -> None:
        """Remove every record, index, setting and logged change of this namespace."""
        self.restore((), {})

    def restore(self, records: Iterable[Record], meta: Mapping[str, str]) -> None:
        """Hold exactly `records` and `meta` as a new history; a kept record never goes missing.

        One MULTI/EXEC per prefix drops its index and the records not kept and writes the
        new ones; on one server (not a cluster) all of it is a single MULTI/EXEC, so a
        reader sees the old state or the new one, never a store half emptied.
        """
        wanted: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            wanted[_prefix_of(record.key)].append(record)
        kept = {self._record_key(r.key) for group in wanted.values() for r in group}
        stale: dict[str, list[str]] = defaultdict(list)
        head = f"idr:{{{self.namespace}:"
        for name in self._redis.scan_iter(match=f"{head}*", count=_SCAN_COUNT):
            # A prefix has no '}', so the first "}:" ends the hash tag.
            prefix = cast("str", name)[len(head) :].partition("}:")[0]
            if name not in kept:
                stale[prefix].append(cast("str", name))
        prefixes = list(dict.fromkeys([*stale, *wanted]))
        everything = [r for group in wanted.values() for r in group]
        if self.cluster:
            for prefix in prefixes:
                with self._redis.pipeline(transaction=True) as pipe:
                    self._queue_restore(pipe, stale[prefix], wanted[prefix])
                    pipe.execute()
            with self._redis.pipeline(transaction=True) as pipe:
                self._queue_settings(pipe, meta, everything)
                pipe.execute()
            return
        with self._redis.pipeline(transaction=True) as pipe:
            for prefix in prefixes:
                self._queue_restore(pipe, stale[prefix], wanted[prefix])
            self._queue_settings(pipe, meta, everything)
            pipe.execute()

    def _queue_restore(self, pipe: Pipeline, stale: list[str], records: list[Record]) -> None:
        """Queue the commands that make one prefix hold exactly `records`."""
        for start in range(0, len(stale), _SCAN_COUNT):
            pipe.unlink(*stale[start : start + _SCAN_COUNT])
        for record in records:
            self._queue_write(pipe, record)

    def _queue_settings(
        self, pipe: Pipeline, meta: Mapping[str, str], records: list[Record]
    ) -> None:
        """Queue a fresh settings hash and a new history that starts with `records`."""
        pipe.unlink(self._meta, self._log)
        if meta:
            pipe.hset(self._meta, mapping=dict(meta))  # type: ignore[arg-type]
        self._queue_log(pipe, [(r.key, r) for r in records])

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()
