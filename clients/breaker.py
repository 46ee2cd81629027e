"""A circuit breaker per node URL: skip a node that keeps failing, probe it again later.

closed ──N consecutive failures──▶ open ──reset_after seconds──▶ half-open
  ▲                                  ▲                              │
  └────────── probe succeeds ────────┼──────── probe fails ─────────┘

In half-open state exactly one caller is let through as the probe; the others keep
skipping the node until the probe reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    """Per-URL circuits; thread-safe; the clock is injectable for tests."""

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold}")
        if reset_after < 0:
            raise ValueError(f"reset_after must be zero or more seconds, not {reset_after}")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, url: str) -> State:
        """closed (use it), open (skip it) or half-open (one probe may go)."""
        with self._lock:
            return self._state(self._circuits.get(url))

    def _state(self, circuit: _Circuit | None) -> State:
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self._clock() - circuit.opened_at >= self.reset_after:
            return "half-open"
        return "open"

    def allow(self, url: str) -> bool:
        """May a request go to this node now? In half-open state only the first caller may."""
        with self._lock:
            circuit = self._circuits.get(url)
            state = self._state(circuit)
            if state == "closed":
                return True
            if state == "open" or circuit is None or circuit.probing:
                return False
            circuit.probing = True
            return True

    def record_success(self, url: str) -> None:
        """The node answered: close its circuit."""
        with self._lock:
            self._circuits.pop(url, None)

    def record_failure(self, url: str) -> None:
        """The node failed: count it; open the circuit at the threshold or after a failed probe."""
        with self._lock:
            circuit = self._circuits.setdefault(url, _Circuit())
            circuit.failures += 1
            if circuit.probing or circuit.failures >= self.failure_threshold:
                circuit.opened_at = self._clock()
            circuit.probing = False

    def release(self, url: str) -> None:
        """A probe ended without a verdict (e.g. the caller gave up): let another probe go."""
        with self._lock:
            circuit = self._circuits.get(url)
            if circuit is not None:
                circuit.probing = False

    def snapshot(self) -> dict[str, State]:
        """The state of every node that failed recently."""
        with self._lock:
            return {url: self._state(c) for url, c in self._circuits.items()}
