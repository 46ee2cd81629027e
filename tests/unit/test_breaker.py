"""The circuit breaker: open after N failures in a row, half-open after a while, one probe."""

from __future__ import annotations

import random
import threading

import pytest

from clients.breaker import CircuitBreaker
from clients.resolver import Resolver, retry_allowed

A, B = "http://cq.test", "http://cd.test"


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_after=5.0, clock=clock)


def test_closed_until_the_threshold_of_failures_in_a_row(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.record_failure(A)
        assert breaker.state(A) == "closed" and breaker.allow(A)
    breaker.record_failure(A)
    assert breaker.state(A) == "open"
    assert not breaker.allow(A)
    assert breaker.allow(B), "circuits are per node"


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure(A)
    breaker.record_failure(A)
    breaker.record_success(A)
    breaker.record_failure(A)
    breaker.record_failure(A)
    assert breaker.state(A) == "closed"


def test_half_open_after_the_pause_lets_exactly_one_probe(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    for _ in range(3):
        breaker.record_failure(A)
    clock.now += 4.9
    assert not breaker.allow(A)
    clock.now += 0.2
    assert breaker.state(A) == "half-open"
    assert breaker.allow(A)
    assert not breaker.allow(A), "a second caller waits for the probe"
    breaker.record_success(A)
    assert breaker.state(A) == "closed" and breaker.allow(A) and breaker.allow(A)


def test_a_failed_probe_opens_the_circuit_again(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure(A)
    clock.now += 5
    assert breaker.allow(A)
    breaker.record_failure(A)
    assert breaker.state(A) == "open"
    clock.now += 4
    assert not breaker.allow(A)
    clock.now += 1
    assert breaker.allow(A)


def test_a_released_probe_lets_the_next_caller_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure(A)
    clock.now += 5
    assert breaker.allow(A)
    breaker.release(A)
    assert breaker.allow(A)


def test_one_probe_among_many_threads(breaker: CircuitBreaker, clock: Clock) -> None:
    for _ in range(3):
        breaker.record_failure(A)
    clock.now += 5
    allowed: list[bool] = []
    lock = threading.Lock()

    def ask() -> None:
        ok = breaker.allow(A)
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1


def test_snapshot_and_bad_settings(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure(A)
    breaker.record_failure(B)
    assert breaker.snapshot() == {A: "open", B: "closed"}
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="reset_after"):
        CircuitBreaker(reset_after=-1)


# -- retry policy of the Resolver -----------------------------------------------------------


def test_only_reads_are_retried() -> None:
    assert retry_allowed("GET") and retry_allowed("head")
    assert not any(retry_allowed(m) for m in ("PUT", "POST", "DELETE", "PATCH"))


def test_backoff_is_full_jitter_bounded_by_the_cap_and_repeats_with_a_seed() -> None:
    one = Resolver("http://x.test", backoff=0.1, backoff_cap=0.5, seed=42)
    two = Resolver("http://x.test", backoff=0.1, backoff_cap=0.5, seed=42)
    pauses = [one._pause(n) for n in range(8)]
    assert pauses == [two._pause(n) for n in range(8)]
    for n, pause in enumerate(pauses):
        assert 0 <= pause <= min(0.5, 0.1 * 2**n)
    # Full jitter spreads pauses over the whole window, not near its top only.
    rng = random.Random(0)
    sample = [Resolver("http://x.test", seed=rng.randrange(1000))._pause(3) for _ in range(200)]
    assert min(sample) < 0.2 < max(sample)
