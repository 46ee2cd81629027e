"""The TTL cache of recursive resolution: expiry on an injected clock, LRU eviction, record TTLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clients.cache import MAX_TTL, TTLCache, record_ttl


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _value(ttl: Any, index: int = 1) -> dict[str, Any]:
    return {"index": index, "type": "URL", "data": {"format": "string", "value": "x"}, "ttl": ttl}


# --- expiry ------------------------------------------------------------------


def test_entry_lives_exactly_its_ttl(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("K", "v", 30)
    clock.advance(29.999)
    assert cache.get("K") == "v"
    clock.advance(0.001)
    assert cache.get("K") is None
    assert len(cache) == 0  # an expired entry is dropped when met


def test_each_entry_has_its_own_ttl(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("short", "s", 5)
    cache.put("long", "l", 50)
    clock.advance(10)
    assert cache.get("short") is None
    assert cache.get("long") == "l"


def test_put_again_renews_the_ttl(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("K", "old", 10)
    clock.advance(8)
    cache.put("K", "new", 10)
    clock.advance(8)
    assert cache.get("K") == "new"


@pytest.mark.parametrize("ttl", [0, -1, -86400])
def test_nothing_is_kept_for_a_ttl_of_zero_or_less(clock: FakeClock, ttl: float) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("K", "v", ttl)
    assert cache.get("K") is None
    assert len(cache) == 0


def test_ttl_is_capped_at_a_day(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("K", "v", 10 * MAX_TTL)
    clock.advance(MAX_TTL - 1)
    assert cache.get("K") == "v"
    clock.advance(1)
    assert cache.get("K") is None


def test_zero_capacity_keeps_nothing(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(0, clock=clock)
    cache.put("K", "v", 60)
    assert cache.get("K") is None


# --- statistics and LRU -------------------------------------------------------


def test_hits_misses_and_evictions_are_counted(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(2, clock=clock)
    assert cache.get("A") is None
    cache.put("A", "a", 60)
    assert cache.get("A") == "a"
    assert cache.get("A") == "a"
    clock.advance(61)
    assert cache.get("A") is None  # expired: a miss
    cache.put("A", "a", 60)
    cache.put("B", "b", 60)
    cache.put("C", "c", 60)
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (2, 2, 1)


def test_least_recently_used_goes_first(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(3, clock=clock)
    for key in "ABC":
        cache.put(key, key.lower(), 60)
    assert cache.get("A") == "a"  # A is now the most recently used
    cache.put("D", "d", 60)  # evicts B, the least recently used
    assert cache.get("B") is None
    assert [cache.get(k) for k in "ACD"] == ["a", "c", "d"]
    cache.put("C", "c2", 60)  # a put also counts as a use
    cache.put("E", "e", 60)  # evicts A
    assert cache.get("A") is None
    assert cache.get("C") == "c2"
    assert len(cache) == 3


@given(st.lists(st.sampled_from("ABCDEFGH"), max_size=60), st.integers(1, 5))
def test_never_holds_more_than_its_capacity(keys: list[str], capacity: int) -> None:
    cache: TTLCache[int] = TTLCache(capacity, clock=lambda: 0.0)
    recent: list[str] = []
    for n, key in enumerate(keys):
        cache.put(key, n, 60)
        if key in recent:
            recent.remove(key)
        recent.append(key)
        assert len(cache) <= capacity
    # Exactly the `capacity` most recently written keys remain.
    for key in recent[-capacity:]:
        assert cache.get(key) is not None
    for key in recent[:-capacity]:
        assert cache.get(key) is None


def test_discard_and_clear(clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("A", "a", 60)
    cache.put("B", "b", 60)
    cache.discard("A")
    cache.discard("missing")
    assert cache.get("A") is None
    assert cache.get("B") == "b"
    cache.clear()
    assert len(cache) == 0


# --- record_ttl ----------------------------------------------------------------


def test_record_ttl_is_the_shortest_relative_ttl() -> None:
    assert record_ttl([_value(86400), _value(300, 2), _value(3600, 3)]) == 300


def test_record_ttl_defaults_to_a_day() -> None:
    assert record_ttl([]) == MAX_TTL
    assert record_ttl([{"index": 1, "type": "URL", "data": {}}]) == 86400


def test_record_ttl_never_exceeds_a_day() -> None:
    assert record_ttl([_value(10 * 86400)]) == MAX_TTL


def test_record_ttl_of_an_iso_expiry_is_seconds_until_then() -> None:
    now = datetime(2024, 10, 15, 8, 0, tzinfo=UTC)
    expiry = (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record_ttl([_value(86400), _value(expiry, 2)], now=now.timestamp()) == 600


def test_record_ttl_of_an_iso_expiry_with_offset_and_without_zone() -> None:
    now = datetime(2024, 10, 15, 8, 0, tzinfo=UTC).timestamp()
    # 16:30 in UTC+8 is 08:30 UTC; a time without zone is read as UTC.
    assert record_ttl([_value("2024-10-15T16:30:00+08:00")], now=now) == 1800
    assert record_ttl([_value("2024-10-15T08:00:45")], now=now) == 45


def test_record_ttl_of_a_past_expiry_is_not_cacheable(clock: FakeClock) -> None:
    now = datetime(2024, 10, 15, 8, 0, tzinfo=UTC).timestamp()
    ttl = record_ttl([_value("2024-10-15T07:00:00Z")], now=now)
    assert ttl <= 0
    cache: TTLCache[str] = TTLCache(10, clock=clock)
    cache.put("K", "v", ttl)
    assert cache.get("K") is None


def test_record_ttl_ignores_an_unreadable_expiry() -> None:
    assert record_ttl([_value("soon"), _value(120, 2)]) == 120


def test_record_ttl_mixes_relative_and_absolute() -> None:
    now = datetime(2024, 10, 15, 8, 0, tzinfo=UTC)
    later = (now + timedelta(seconds=90)).isoformat()
    assert record_ttl([_value(60), _value(later, 2)], now=now.timestamp()) == 60
    assert record_ttl([_value(600), _value(later, 2)], now=now.timestamp()) == 90
