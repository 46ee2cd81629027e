"""Batch registration throughput, and memory and disk per identifier, at N identifiers.

The identifiers are copies of the demo's sample wardrobe record (same template, items
and trace edges; own suffix `B0000000`, `B0000001`, ... and consumer URL), registered
through `POST /api/batch/handles` at the furniture node in batches of 2000 by the
node's admin. The baseline is the store alone: the same records written in-process with
`Store.put_many`, in the same run, on the same back end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from bench.config import BenchConfig
from bench.nodes import BenchEnv
from bench.report import Result, Target, print_table
from idcore.demo import build_demo
from idcore.identifier import fold
from idcore.record_codec import decode
from idcore.store import Record, Store, open_store
from idcore.topology import load_topology

PREFIX = "88.168.1"
PATTERN = f"/api/handles/{PREFIX}/B%07d"
BATCH = 2000
CONCURRENCY = 4
"""Batches in flight, each on its own kept-alive connection.

Not 2: the kernel hashes each connection to one of the node's SO_REUSEPORT workers, so
two connections share one worker half the time and the other worker idles for the whole
run (seen as 5.0 s of CPU on one worker and 2.3 s on the other, and as runs of 2,093
and 4,466 ids/s back to back). With 4 that happens one run in 8; more connections than
that cost more in contention for SQLite's write lock than they win (measured with 6
and 8: 2,900-3,600 ids/s against 4,250 with 4).
"""
_HOLE = "\x00"


def bench_handle(i: int) -> str:
    """The i-th benchmark identifier."""
    return f"{PREFIX}/B{i:07d}"


def sample_product() -> tuple[str, list[dict[str, Any]]]:
    """The demo's sample product record (handle, values without timestamps)."""
    demo = build_demo(load_topology(), 2024, "http://127.0.0.1:8000")
    values = [
        {k: v for k, v in value.items() if k != "timestamp"}
        for value in demo.records()[demo.product]
    ]
    return demo.product, values


class Bodies:
    """Batch request bodies of sample-product copies, made by string substitution."""

    def __init__(self) -> None:
        handle, values = sample_product()
        serial = handle.split("/", 1)[1]
        item = json.dumps(
            {"handle": handle, "values": values}, ensure_ascii=False, separators=(",", ":")
        )
        holed = item.replace(handle, f"{_HOLE}H{_HOLE}").replace(serial, f"{_HOLE}S{_HOLE}")
        self._parts = holed.split(_HOLE)
        self.values = values

    def item(self, i: int) -> str:
        """The JSON of item i."""
        handle = bench_handle(i)
        serial = handle.split("/", 1)[1]
        return "".join(handle if p == "H" else serial if p == "S" else p for p in self._parts)

    def body(self, start: int, count: int) -> bytes:
        """The body registering identifiers start .. start+count-1."""
        items = ",".join(self.item(i) for i in range(start, start + count))
        return f'{{"handles":[{items}],"overwrite":false}}'.encode()

    def records(self, start: int, count: int) -> list[Record]:
        """The same records as a store holds them (for the store-only baseline)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out = []
        for i in range(start, start + count):
            raw = json.loads(self.item(i))
            values = [{**v, "timestamp": stamp} for v in raw["values"]]
            out.append(Record(raw["handle"], values))
        return out


@dataclass(frozen=True)
class Loaded:
    """One registration run."""

    items: int
    seconds: float
    requests: int

    @property
    def rate(self) -> float:
        """Identifiers registered per second."""
        return self.items / self.seconds if self.seconds > 0 else 0.0


_bodies: Bodies | None = None


def bodies() -> Bodies:
    """The body maker (built once: building the demo takes a moment)."""
    global _bodies
    if _bodies is None:
        _bodies = Bodies()
    return _bodies


def register(env: BenchEnv, start: int, count: int, concurrency: int = CONCURRENCY) -> Loaded:
    """Register identifiers start .. start+count-1 through the batch API; fail on any refusal."""
    chunks = [(s, min(BATCH, start + count - s)) for s in range(start, start + count, BATCH)]
    maker = bodies()
    local = threading.local()
    url = f"{env.home}/api/batch/handles"

    def post(chunk: tuple[int, int]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = env.home_admin
        resp = session.post(
            url,
            data=maker.body(*chunk),
            headers={"Content-Type": "application/json"},
            timeout=300,
        )
        body = resp.json()
        if resp.status_code != 200 or body.get("failed", 1):
            refused = next((r for r in body.get("results", []) if r["responseCode"] != 1), body)
            raise RuntimeError(f"batch at {chunk[0]} refused ({resp.status_code}): {refused}")

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-batch") as pool:
        list(pool.map(post, chunks))
    return Loaded(count, time.perf_counter() - began, len(chunks))


def ensure_loaded(env: BenchEnv, n: int) -> Loaded | None:
    """Make sure identifiers 0 .. n-1 are registered at the home node; what it took, if any."""
    if env.loaded >= n:
        return None
    done = register(env, env.loaded, n - env.loaded)
    env.loaded = n
    return done


# -- footprint ---------------------------------------------------------------------------------


def footprint(env: BenchEnv) -> dict[str, int]:
    """Bytes the home node's data takes now: Redis memory and AOF, or the SQLite files."""
    if env.store == "redis":
        client = env.redis_client()
        try:
            compact_aof(client)
            memory = client.info("memory")
        finally:
            client.close()
        aof = env.redis_server.dir if env.redis_server else Path()
        return {
            "used_memory": int(memory["used_memory"]),
            "used_memory_dataset": int(memory.get("used_memory_dataset", 0)),
            "aof_bytes": _tree_size(aof, ("appendonly", "appendonlydir")),
        }
    path = env.sqlite_path()
    with sqlite3.connect(path, timeout=30) as conn:
        # Fold the write-ahead log into the file: the file alone is then the data.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    wal = path.with_name(path.name + "-wal")
    return {
        "db_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }


def compact_aof(client: redis.Redis, timeout: float = 900.0) -> None:
    """Rewrite the AOF and wait: its size is then the data's, and no rewrite runs later.

    Redis rewrites a growing AOF on its own, in a forked child; one starting in the
    middle of a measurement would distort it, and the file size depends on when the
    last one ran.
    """
    with contextlib.suppress(redis.ResponseError):  # one is running already: wait for it
        client.bgrewriteaof()
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if not int(info["aof_rewrite_in_progress"]) and not int(info["aof_rewrite_scheduled"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Redis AOF rewrite did not finish within {timeout:g} s")
        time.sleep(0.1)


def _tree_size(root: Path, names: tuple[str, ...]) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            if any(part.startswith(names) for part in Path(dirpath, name).relative_to(root).parts):
                total += Path(dirpath, name).stat().st_size
    return total


def per_identifier(before: dict[str, int], after: dict[str, int], items: int) -> dict[str, float]:
    """Growth per identifier of every footprint figure."""
    return {k: (after[k] - before[k]) / items for k in after}


def record_sizes(env: BenchEnv) -> dict[str, float]:
    """Bytes of one stored benchmark record (and, on Redis, of its key and index entry)."""
    key = fold(bench_handle(0))
    if env.store == "redis":
        client = env.redis_client()
        try:
            namespace = "furniture"
            rkey = f"idr:{{{namespace}:{PREFIX}}}:r:{key}"
            index = f"idr:{{{namespace}:{PREFIX}}}:idx"
            size = client.zcard(index) or 1
            # The store's client reads blobs as surrogate-escaped text (idcore/redis_store.py).
            blob = str(client.get(rkey) or "").encode("utf-8", "surrogateescape")
            return {
                "record_json_bytes": float(len(decode(blob).dumps().encode())),
                "stored_record_bytes": float(client.strlen(rkey)),
                "record_key_memory": float(client.memory_usage(rkey) or 0),
                "index_memory_per_entry": float(client.memory_usage(index, samples=0) or 0) / size,
            }
        finally:
            client.close()
    with sqlite3.connect(env.sqlite_path(), timeout=30) as conn:
        row = conn.execute(
            "SELECT length(CAST(body AS BLOB)) FROM records WHERE key = ?", (key,)
        ).fetchone()
    conn.close()
    return {"record_json_bytes": float(row[0]) if row else 0.0}


# -- the store-only baseline -------------------------------------------------------------------


def store_only_rate(env: BenchEnv, count: int) -> float:
    """Identifiers/s that Store.put_many alone writes, in-process, on the same back end."""
    namespace = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    store: Store = open_store(
        env.store,
        namespace=namespace,
        data_dir=env.workdir,
        redis_url=env.redis_server.url if env.redis_server else None,
    )
    try:
        seconds = 0.0
        for start in range(0, count, BATCH):
            records = bodies().records(start, min(BATCH, count - start))
            began = time.perf_counter()  # the writes alone, not making the records
            store.put_many(records)
            seconds += time.perf_counter() - began
        store.clear()
    finally:
        store.close()
        for leftover in env.workdir.glob(f"{namespace}.sqlite3*"):
            leftover.unlink()
    return count / seconds


# -- the benchmark -----------------------------------------------------------------------------


def run(env: BenchEnv, cfg: BenchConfig) -> list[Result]:
    """Register up to cfg.n identifiers; throughput, then memory and disk per identifier."""
    ensure_loaded(env, min(cfg.small, cfg.n))
    start = env.loaded
    count = cfg.n - start
    if count <= 0:
        raise ValueError(f"--n {cfg.n} must be above the {start} identifiers already stored")
    before = footprint(env)
    loaded = register(env, start, count)
    env.loaded = cfg.n
    baseline_count = min(count, 20_000)
    store_rate = store_only_rate(env, baseline_count)
    # After the baseline (whose records are gone again): the AOF rewrite and WAL
    # checkpoint of footprint() then leave nothing pending for later measurements.
    after = footprint(env)

    batch = Result(
        name=f"batch-{env.store}",
        config={"identifiers": count, "batch": BATCH, "concurrency": CONCURRENCY},
        metrics={
            "identifiers": count,
            "seconds": round(loaded.seconds, 3),
            "requests": loaded.requests,
            "per_second": round(loaded.rate, 1),
        },
        baseline={"store_put_many_per_second": round(store_rate, 1), "identifiers": baseline_count},
        ratio={"api_vs_store": loaded.rate / store_rate},
        targets=[
            Target(
                f"batch registration into {env.store}",
                loaded.rate,
                20_000 if env.store == "redis" else 10_000,
                ">=",
                "ids/s",
            )
        ],
    )
    grown = per_identifier(before, after, count)
    sizes = record_sizes(env)
    memory = Result(
        name=f"memory-{env.store}",
        config={"identifiers": count, "stored_total": cfg.n},
        metrics={**{f"{k}_per_id": round(v, 1) for k, v in grown.items()}, **sizes},
        baseline={"record_json_bytes": sizes["record_json_bytes"]},
        ratio=(
            {"memory_vs_record_json": grown["used_memory"] / sizes["record_json_bytes"]}
            if env.store == "redis"
            else {"disk_vs_record_json": grown["db_bytes"] / sizes["record_json_bytes"]}
        ),
        targets=(
            [Target("Redis memory per demo identifier", grown["used_memory"], 1024, "<=", "B")]
            if env.store == "redis"
            else []
        ),
        notes=(
            ["aof_bytes: the AOF right after a rewrite (an RDB preamble, LZF-compressed)"]
            if env.store == "redis"
            else ["db_bytes: the SQLite file after a WAL checkpoint (TRUNCATE)"]
        ),
    )
    print_table(
        f"Batch registration into {env.store} ({count:,} identifiers, {BATCH} per request)",
        ["case", "identifiers/s", "seconds", "vs store alone"],
        [
            ["POST /api/batch/handles", loaded.rate, loaded.seconds, loaded.rate / store_rate],
            ["Store.put_many in-process (baseline)", store_rate, baseline_count / store_rate, 1.0],
        ],
    )
    print_table(
        f"Footprint per identifier on {env.store} (at {cfg.n:,} stored)",
        ["figure", "bytes per identifier"],
        [[k, v] for k, v in memory.metrics.items()],
    )
    return [batch, memory]
