"""The request journal: a bounded, thread-safe ring buffer of recent requests (after WireMock)."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_CAPACITY = 1000
_CODE = re.compile(rb'"responseCode"\s*:\s*(\d+)')


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request as the node saw it; status None means the connection was dropped."""

    seq: int
    at: float
    method: str
    path: str
    query: str
    handle: str | None
    status: int | None
    response_code: int | None
    duration_ms: float
    client: str | None
    fault: str | None

    @property
    def time(self) -> str:
        """When the request was recorded, as ISO 8601 UTC with milliseconds."""
        stamp = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")

    def to_json(self) -> dict[str, Any]:
        """Wire form (camelCase, like the Handle API)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "handle": self.handle,
            "status": self.status,
            "responseCode": self.response_code,
            "durationMs": round(self.duration_ms, 3),
            "client": self.client,
            "fault": self.fault,
        }


class Journal:
    """The last `capacity` requests of this process, oldest first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()

    def add(
        self,
        *,
        method: str,
        path: str,
        query: str = "",
        handle: str | None = None,
        status: int | None,
        response_code: int | None,
        duration_ms: float,
        client: str | None = None,
        fault: str | None = None,
    ) -> JournalEntry:
        """Record one request."""
        at = time.time()  # formatted only when someone reads the journal
        with self._lock:
            self._seq += 1
            entry = JournalEntry(
                self._seq,
                at,
                method,
                path,
                query,
                handle,
                status,
                response_code,
                duration_ms,
                client,
                fault,
            )
            self._entries.append(entry)
        return entry

    def entries(self, limit: int | None = None, since: int = 0) -> list[JournalEntry]:
        """Entries after sequence number `since`, oldest first; only the last `limit`."""
        with self._lock:
            found = [e for e in self._entries if e.seq > since]
        return found[-limit:] if limit else found

    def clear(self) -> None:
        """Forget every entry (sequence numbers keep counting)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def response_code_of(body_head: bytes) -> int | None:
    """The Handle responseCode near the start of a JSON body, or None."""
    match = _CODE.search(body_head)
    return int(match.group(1)) if match else None
