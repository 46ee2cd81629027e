"""Fixtures shared by every test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from clients.launcher import Hierarchy
from tests.support.hierarchy import start_hierarchy
from tests.support.redis_cluster import RedisClusterServer
from tests.support.redis_server import RedisServer, redis_available

# --- Redis -------------------------------------------------------------------


def _require_redis() -> bool:
    """True when a missing redis-server must fail the run instead of skipping (CI)."""
    return os.environ.get("IDR_REQUIRE_REDIS") == "1"


def _skip_without_redis() -> None:
    """Skip the test when redis-server is missing (fail it instead under CI)."""
    if not redis_available():
        message = "redis-server is not installed (apt-get install redis-server)"
        if _require_redis():
            pytest.fail(f"IDR_REQUIRE_REDIS=1 but {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole session (never the shared one on 6379)."""
    _skip_without_redis()
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """A private 3-master cluster for the test module (never the machine's Redis)."""
    _skip_without_redis()
    with RedisClusterServer(masters=3) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The private server's URL; the server is emptied (and revived if killed) after the test."""
    yield redis_server.url
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()


# --- Hierarchy of real node processes ------------------------------------------


@pytest.fixture(scope="module")
def running_hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """The full default hierarchy on SQLite, as real processes on free ports, for one module."""
    hierarchy = start_hierarchy(tmp_path_factory.mktemp("hierarchy"))
    try:
        yield hierarchy
    finally:
        hierarchy.stop()
