"""Kept-alive HTTP/1.1 connections to the secondary nodes, one set per thread (http.client).

The top-level node's recursion and traces make many small GETs to a few nodes. Through
`requests` each cost about 0.9 ms of CPU, under the one interpreter lock that every
request of the node shares; a plain `http.client` connection costs about 0.2 ms. Like
urllib3, a kept-alive connection that the peer closed (readable while idle) is replaced
before it is used, never retried after a request was sent: a dropped request stays
dropped.
"""

from __future__ import annotations

import http.client
import select
import threading
from urllib.parse import urlsplit


class Connections:
    """GET over per-thread kept-alive connections, by host and port."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _pool(self) -> dict[tuple[str, int, float], http.client.HTTPConnection]:
        pool: dict[tuple[str, int, float], http.client.HTTPConnection] | None = getattr(
            self._local, "pool", None
        )
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def get(self, url: str, timeout: float) -> tuple[int, bytes]:
        """Status and body of a GET; OSError or http.client.HTTPException if it failed."""
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"not a plain http URL: {url}")
        key = (parts.hostname, parts.port or 80, timeout)
        pool = self._pool()
        conn = pool.pop(key, None)
        if conn is not None and _closed_by_peer(conn):
            conn.close()
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection(key[0], key[1], timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            conn.close()
            raise
        if not resp.will_close:
            pool[key] = conn
        else:
            conn.close()
        return resp.status, body

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in self._pool().values():
            conn.close()
        self._pool().clear()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """True if an idle connection has something to read: EOF (closed) or stray bytes."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
