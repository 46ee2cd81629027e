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

Key = tuple[str, int, float]


class Connections:
    """GET over per-thread kept-alive connections, by host and port."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _pool(self) -> dict[Key, list[http.client.HTTPConnection]]:
        pool: dict[Key, list[http.client.HTTPConnection]] | None = getattr(
            self._local, "pool", None
        )
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def get(self, url: str, timeout: float) -> tuple[int, bytes]:
        """Status and body of a GET; OSError or http.client.HTTPException if it failed."""
        return self.start(url, timeout).finish()

    def start(self, url: str, timeout: float) -> Sent:
        """Send a GET now and read its answer later (Sent.finish), on this thread.

        Several may be on their way at once, each on a connection of its own. OSError or
        http.client.HTTPException if it could not be sent.
        """
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"not a plain http URL: {url}")
        key = (parts.hostname, parts.port or 80, timeout)
        idle = self._pool().get(key)
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if _closed_by_peer(conn):
                conn.close()
                conn = None
        if conn is None:
            conn = http.client.HTTPConnection(key[0], key[1], timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target, headers={"Accept": "application/json"})
        except BaseException:
            conn.close()
            raise
        return Sent(self, key, conn)

    def _release(self, key: Key, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose answer was read whole, for this thread's next GET."""
        self._pool().setdefault(key, []).append(conn)

    def close(self) -> None:
        """Close this thread's connections."""
        for idle in self._pool().values():
            for conn in idle:
                conn.close()
        self._pool().clear()


class Sent:
    """A GET on its way: the socket its answer arrives on, and how to read that answer."""

    def __init__(self, owner: Connections, key: Key, conn: http.client.HTTPConnection) -> None:
        self._owner = owner
        self._key = key
        self._conn = conn

    def fileno(self) -> int:
        """The connection's socket, to wait on until it is readable."""
        sock = self._conn.sock
        if sock is None:
            raise OSError("the connection is closed")
        return int(sock.fileno())

    def finish(self) -> tuple[int, bytes]:
        """Status and body; OSError or http.client.HTTPException if it failed."""
        try:
            resp = self._conn.getresponse()
            body = resp.read()
        except BaseException:
            self._conn.close()
            raise
        if resp.will_close:
            self._conn.close()
        else:
            self._owner._release(self._key, self._conn)
        return resp.status, body

    def abandon(self) -> None:
        """Give up on the answer: the connection is closed, never reused."""
        self._conn.close()


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
