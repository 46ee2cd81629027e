"""The hierarchy a benchmark measures: real node processes on free ports, SQLite or Redis."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis
import requests

from clients.launcher import Hierarchy
from idcore.settings import demo_admin_secret
from tests.support.hierarchy import topology_on_free_ports
from tests.support.redis_server import RedisServer

StoreKind = Literal["sqlite", "redis"]

NODES = ("cq-top", "furniture", "timber", "materials", "inspection")
"""The top-level node and the secondary nodes the sample product's trace crosses."""
TOP = "cq-top"
HOME = "furniture"
"""The secondary node that holds the benchmark's identifiers (prefix 88.168)."""
START_TIMEOUT = 90.0


@dataclass
class BenchEnv:
    """A running hierarchy with its own store (and Redis server), for one store kind."""

    store: StoreKind
    workdir: Path
    hierarchy: Hierarchy
    redis_server: RedisServer | None = None
    loaded: int = 0
    """Benchmark identifiers registered at the home node so far (numbered from 0)."""
    session: requests.Session = field(default_factory=requests.Session)

    def url(self, node: str) -> str:
        """Base URL of a node."""
        return self.hierarchy.topology.node(node).url

    @property
    def top(self) -> str:
        """Base URL of the top-level node."""
        return self.url(TOP)

    @property
    def home(self) -> str:
        """Base URL of the node that holds the benchmark identifiers."""
        return self.url(HOME)

    @property
    def home_admin(self) -> tuple[str, str]:
        """The home node's admin identity and secret (demo credentials)."""
        prefix = self.hierarchy.topology.node(HOME).prefix
        return (f"300:{prefix}/ADMIN", demo_admin_secret(HOME))

    @property
    def product(self) -> str:
        """The demo's sample product identifier."""
        return str(self.hierarchy.describe()["samples"]["product"])

    def info(self, node: str) -> dict[str, Any]:
        """GET /_emulator/bench/info of a node."""
        resp = self.session.get(f"{self.url(node)}/_emulator/bench/info", timeout=60)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def clear_cache(self, node: str = TOP) -> None:
        """Empty a node's recursion cache (exact with one worker per node)."""
        resp = self.session.post(f"{self.url(node)}/_emulator/bench/cache/clear", timeout=10)
        resp.raise_for_status()

    def redis_client(self) -> redis.Redis:
        """A client of the env's own Redis server."""
        if self.redis_server is None:
            raise RuntimeError("this benchmark environment runs on SQLite, not Redis")
        return redis.Redis.from_url(
            self.redis_server.url, decode_responses=True, encoding_errors="surrogateescape"
        )

    def sqlite_path(self, node: str = HOME) -> Path:
        """The SQLite file of a node."""
        return self.hierarchy.data_dir / f"{node}.sqlite3"

    def close(self) -> None:
        """Stop every process this env started and remove its files."""
        self.session.close()
        try:
            self.hierarchy.stop()
        finally:
            if self.redis_server is not None:
                self.redis_server.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_env(
    store: StoreKind,
    *,
    workers: int | None = None,
    threads: int | None = None,
    nodes: tuple[str, ...] = NODES,
    node_env: dict[str, str] | None = None,
) -> BenchEnv:
    """Start the benchmark hierarchy on `store`, every node with its benchmark routes on.

    `node_env` adds IDR_* settings to every node (e.g. {"IDR_ACCESS_LOG": "false"}).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"idr-bench-{store}-"))
    server: RedisServer | None = None
    try:
        if store == "redis":
            server = RedisServer(workdir / "redis").start()
        extra = {**(node_env or {}), "IDR_BENCH_ENDPOINTS": "1"}
        if workers is not None:
            extra["IDR_WORKERS"] = str(workers)
        if threads is not None:
            extra["IDR_THREADS"] = str(threads)
        hierarchy = Hierarchy(
            topology=topology_on_free_ports(nodes),
            data_dir=workdir / "data",
            store=store,
            redis_url=server.url if server else None,
            extra_env=extra,
        )
        hierarchy.start(timeout=START_TIMEOUT)
    except BaseException:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return BenchEnv(store, workdir, hierarchy, server)


@contextlib.contextmanager
def running(store: StoreKind, **options: Any) -> Iterator[BenchEnv]:
    """`with running("sqlite") as env:` start_env, closed whatever happens."""
    env = start_env(store, **options)
    try:
        yield env
    finally:
        env.close()
