"""The pure trace walk: random graphs with cycles and diamonds, limits, failures, deadline."""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.tracer import run_trace
from clients.walk import Hop, Walk, trace_edges
from idcore.errors import NodeTimeout

Graph = dict[str, list[tuple[str, str]]]


def _values(edges: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"index": 3000 + i, "type": relation, "data": {"format": "string", "value": target}}
        for i, (relation, target) in enumerate(edges)
    ]


def _name(n: int) -> str:
    return f"88.{168 + n % 4}.1/N-{n}"


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Random directed graphs over up to 25 records: self loops, cycles, diamonds, repeats."""
    size = draw(st.integers(1, 25))
    relations = st.sampled_from(["TRACE.INPUT", "TRACE.STEP", "TRACE.ANYTHING"])
    graph: Graph = {}
    for n in range(size):
        targets = draw(st.lists(st.tuples(relations, st.integers(0, size - 1)), max_size=5))
        # Spell some targets in lower case: the walk must treat them as the same record.
        graph[_name(n)] = [
            (rel, _name(t).lower() if draw(st.booleans()) else _name(t)) for rel, t in targets
        ]
    return graph


def _walk(graph: Graph, **limits: int) -> tuple[Walk, list[str]]:
    """Drive the walk wave by wave over an in-memory graph; every fetch logged."""
    walk = Walk(_name(0), **limits)
    fetched: list[str] = []
    by_key = {k.upper(): v for k, v in graph.items()}
    while not walk.done:
        wave = walk.take()
        assert wave, "a walk that is not done hands out a wave"
        for hop in wave:
            fetched.append(hop.handle.upper())
            walk.found(hop, _values(by_key[hop.handle.upper()]), "node")
    return walk, fetched


def _distances(graph: Graph) -> dict[str, int]:
    by_key = {k.upper(): v for k, v in graph.items()}
    dist = {_name(0).upper(): 0}
    queue = deque([_name(0).upper()])
    while queue:
        here = queue.popleft()
        for _, target in by_key[here]:
            if target.upper() not in dist:
                dist[target.upper()] = dist[here] + 1
                queue.append(target.upper())
    return dist


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_every_reachable_record_is_fetched_once_at_its_shortest_depth(graph: Graph) -> None:
    walk, fetched = _walk(graph)
    dist = _distances(graph)
    assert len(fetched) == len(set(fetched))
    assert set(fetched) == set(dist)
    assert {v.hop.handle.upper(): v.hop.depth for v in walk.records} == dist
    assert walk.complete and not walk.errors
    # Every edge of every fetched record is kept once, cycles and diamonds included.
    expected = {(s.upper(), t.upper(), r) for s in dist for r, t in graph[_find(graph, s)]}
    assert {(e.source.upper(), e.target.upper(), e.relation) for e in walk.edges} == expected
    assert len(walk.edges) == len(expected)


def _find(graph: Graph, upper: str) -> str:
    return next(k for k in graph if k.upper() == upper)


@settings(max_examples=200, deadline=None)
@given(graphs(), st.integers(0, 4), st.integers(1, 12))
def test_limits_are_never_exceeded_and_what_they_cut_is_named(
    graph: Graph, max_depth: int, max_records: int
) -> None:
    walk, fetched = _walk(graph, max_depth=max_depth, max_records=max_records)
    assert len(fetched) <= max_records
    assert all(v.hop.depth <= max_depth for v in walk.records)
    dist = _distances(graph)
    cut = {e.hop.handle.upper() for e in walk.errors}
    assert {e.reason for e in walk.errors} <= {"depth_limit", "record_limit"}
    # Whatever was reachable is either fetched or named as cut by a limit, never both.
    assert set(fetched) | cut <= set(dist)
    assert not set(fetched) & cut
    assert walk.complete == (set(fetched) == set(dist))


def test_failures_are_collected_and_the_walk_goes_on() -> None:
    walk = Walk("88.168.1/P")
    (root,) = walk.take()
    walk.found(
        root,
        _values(
            [
                ("TRACE.INPUT", "88.169.1/A"),
                ("TRACE.INPUT", "88.170.1/B"),
                ("TRACE.INPUT", "no identifier here"),
                ("TRACE.INPUT", "88.169.1/a"),
            ]
        ),
        "furniture",
    )
    a, b = walk.take()
    walk.failed(a, "unreachable", "timber is down", node="http://timber")
    walk.found(b, [], "materials")
    assert walk.done and not walk.complete
    assert [r.hop.handle for r in walk.records] == ["88.168.1/P", "88.170.1/B"]
    assert [(e.hop.handle, e.reason) for e in walk.errors] == [
        ("88.169.1/A", "unreachable"),
        ("no identifier here", "invalid"),
    ]
    # Both spellings of A are one edge target, named as first spelled.
    assert [e.target for e in walk.edges] == ["88.169.1/A", "88.170.1/B"]


def test_abandon_names_everything_left_with_the_reason() -> None:
    walk = Walk("88.168.1/P")
    (root,) = walk.take()
    walk.found(root, _values([("TRACE.INPUT", "88.169.1/A"), ("TRACE.STEP", "88.168.1/S")]), "n")
    walk.take()
    left = walk.abandon("deadline")
    assert {h.handle for h in left} == {"88.169.1/A", "88.168.1/S"}
    assert walk.done and {e.reason for e in walk.errors} == {"deadline"}


def test_enterprise_lookups_ride_along_once_per_prefix() -> None:
    walk = Walk("88.168.1/P", enterprises=True)
    wave = walk.take()
    assert [(h.handle, h.kind) for h in wave] == [
        ("88.168.1/P", "record"),
        ("0.NA/88.168.1", "enterprise"),
    ]
    walk.found(wave[0], _values([("TRACE.INPUT", "88.168.1/Q")]), "n")
    walk.failed(wave[1], "not_found", "no prefix record")  # never a trace error
    (q,) = walk.take()
    assert q.handle == "88.168.1/Q"
    walk.found(q, [], "n")
    assert walk.complete


def test_answers_must_be_for_hops_in_flight() -> None:
    walk = Walk("88.168.1/P")
    with pytest.raises(KeyError, match="not in flight"):
        walk.found(Hop("88.168.1/P", 0), [], "n")
    with pytest.raises(ValueError, match="max_records"):
        Walk("88.168.1/P", max_records=0)


def test_trace_edges_reads_only_trace_values_in_index_order() -> None:
    values = [
        {"index": 2001, "type": "TRACE.STEP", "data": {"format": "string", "value": "88.1/B"}},
        {"index": 2000, "type": "TRACE.INPUT", "data": {"format": "string", "value": "88.1/A"}},
        {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x"}},
        {"index": 2002, "type": "TRACEABLE", "data": {"format": "string", "value": "88.1/C"}},
    ]
    assert trace_edges(values) == [("TRACE.INPUT", "88.1/A"), ("TRACE.STEP", "88.1/B")]


# --- the fetch loop over an in-memory graph -----------------------------------------------


def test_the_fetch_loop_costs_the_longest_chain_not_the_sum() -> None:
    import time

    fan = {"88.168.1/R": [("TRACE.INPUT", f"88.169.1/L{i}") for i in range(12)]}

    def fetch(handle: str) -> tuple[list[dict[str, Any]], str]:
        time.sleep(0.05)
        return _values(fan.get(handle, [])), "node"

    result = run_trace("88.168.1/R", fetch, enterprises=False)
    assert len(result.records) == 13 and result.complete and result.waves == 2
    assert result.elapsed < 0.5  # 13 sequential fetches would take 0.65 s


def test_the_fetch_loop_ends_by_its_deadline() -> None:
    import threading
    import time

    release = threading.Event()

    def fetch(handle: str) -> tuple[list[dict[str, Any]], str]:
        if handle == "88.168.1/R":
            return _values([("TRACE.INPUT", "88.170.1/SLOW"), ("TRACE.INPUT", "88.169.1/OK")]), "n"
        if handle == "88.170.1/SLOW":
            release.wait(5)
        return [], "n"

    began = time.monotonic()
    result = run_trace("88.168.1/R", fetch, deadline=0.3, enterprises=False)
    release.set()
    assert time.monotonic() - began < 1.0
    assert [r.handle for r in result.records] == ["88.168.1/R", "88.169.1/OK"]
    assert [(e.handle, e.reason) for e in result.errors] == [("88.170.1/SLOW", "deadline")]


def test_the_fetch_loop_reports_exceptions_per_identifier() -> None:
    def fetch(handle: str) -> tuple[list[dict[str, Any]], str]:
        if handle == "88.168.1/R":
            return _values([("TRACE.INPUT", "88.169.1/BOOM")]), "n"
        raise RuntimeError("the fetch function itself broke")

    result = run_trace("88.168.1/R", fetch, enterprises=False)
    (error,) = result.errors
    assert error.reason == "error" and "broke" in error.message


@settings(max_examples=300, deadline=None)
@given(graphs(), st.integers(0, 4), st.data())
def test_answers_in_any_order_give_the_same_walk(
    graph: Graph, max_depth: int, data: st.DataObject
) -> None:
    """Answers landing in any order, with rounds taken in between, change nothing."""
    walk = Walk(_name(0), max_depth=max_depth)
    by_key = {k.upper(): v for k, v in graph.items()}
    out: list[Hop] = []
    fetched: list[str] = []
    while not walk.done:
        out.extend(walk.take())
        hop = out.pop(data.draw(st.integers(0, len(out) - 1), label="next answer"))
        fetched.append(hop.handle.upper())
        walk.found(hop, _values(by_key[hop.handle.upper()]), "node")
    dist = _distances(graph)
    assert len(fetched) == len(set(fetched))
    # Never more than the limit allows, and a long path seen first never cuts a short one.
    assert set(fetched) == {k for k, d in dist.items() if d <= max_depth}
    assert {(e.hop.handle.upper(), e.reason) for e in walk.errors} == {
        (k, "depth_limit") for k, d in dist.items() if d == max_depth + 1
    }
    ordered, _ = _walk(graph, max_depth=max_depth)
    assert [(v.hop.handle, v.hop.depth, v.hop.parent) for v in walk.records] == [
        (v.hop.handle, v.hop.depth, v.hop.parent) for v in ordered.records
    ]
    assert walk.edges == ordered.edges


# --- the one-thread fetch loop (batches read when their socket is readable) ---------------


class _Pending:
    """A batch whose answer arrives on a real socket pair: readable once `ready` is written."""

    def __init__(self, results: list[Any], ready: bool, expires_at: float) -> None:
        self._read, self._write = socket.socketpair()
        self._results = results
        self.expires_at = expires_at
        self.expired = False
        if ready:
            self._write.send(b"x")

    def fileno(self) -> int | None:
        return self._read.fileno()

    def finish(self) -> list[Any]:
        self._close()
        return self._results

    def expire(self) -> list[Any]:
        self.expired = True
        self._close()
        return [NodeTimeout("the node did not answer", url="http://slow") for _ in self._results]

    def _close(self) -> None:
        self._read.close()
        self._write.close()


class _SocketFetch:
    """A StartFetch over an in-memory graph: each prefix is a node, each batch one request."""

    def __init__(
        self,
        graph: Graph,
        silent: frozenset[str] = frozenset(),
        refused: frozenset[str] = frozenset(),
        timeout: float = 30.0,
    ) -> None:
        self.by_key = {k.upper(): v for k, v in graph.items()}
        self.silent, self.refused, self.timeout = silent, refused, timeout
        self.started: list[_Pending] = []
        self.batches: list[list[str]] = []

    def group(self, handle: str) -> str:
        return handle.split("/")[0]

    def fetch_many(self, handles: list[str]) -> list[Any]:
        raise AssertionError("the one-thread loop starts batches, it never fetches them")

    def start_many(self, handles: list[str]) -> _Pending:
        self.batches.append(handles)
        if any(h in self.refused for h in handles):
            raise ConnectionRefusedError("the node refused the connection")
        results = [(_values(self.by_key.get(h.upper(), [])), "node") for h in handles]
        ready = not any(h in self.silent for h in handles)
        pending = _Pending(results, ready, time.monotonic() + self.timeout)
        self.started.append(pending)
        return pending


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_the_one_thread_loop_walks_as_the_threaded_one(graph: Graph) -> None:
    by_key = {k.upper(): v for k, v in graph.items()}

    def fetch(handle: str) -> tuple[list[dict[str, Any]], str]:
        return _values(by_key[handle.upper()]), "node"

    batch = _SocketFetch(graph)
    one_thread = run_trace(_name(0), fetch, batch=batch, enterprises=False)
    threaded = run_trace(_name(0), fetch, enterprises=False)
    assert {r.handle.upper() for r in one_thread.records} == {
        r.handle.upper() for r in threaded.records
    }
    assert one_thread.edges == threaded.edges and one_thread.complete
    assert all(len({batch.group(h) for h in hops}) == 1 for hops in batch.batches)


def test_the_one_thread_loop_ends_by_its_deadline_and_drops_what_is_on_its_way() -> None:
    graph = {"88.168.1/R": [("TRACE.INPUT", "88.170.1/SLOW"), ("TRACE.INPUT", "88.169.1/OK")]}
    batch = _SocketFetch(graph, silent=frozenset({"88.170.1/SLOW"}))
    began = time.monotonic()
    result = run_trace("88.168.1/R", lambda h: ([], "n"), batch=batch, deadline=0.3)
    assert time.monotonic() - began < 1.0
    assert [r.handle for r in result.records] == ["88.168.1/R", "88.169.1/OK"]
    assert [(e.handle, e.reason) for e in result.errors] == [("88.170.1/SLOW", "deadline")]
    (slow,) = [p for p, hops in zip(batch.started, batch.batches, strict=True) if "SLOW" in hops[0]]
    assert slow.expired, "the request still on its way is given up (its connection closed)"


def test_a_batch_late_past_its_timeout_fails_as_a_timeout() -> None:
    graph = {"88.168.1/R": [("TRACE.INPUT", "88.170.1/SLOW"), ("TRACE.INPUT", "88.169.1/OK")]}
    batch = _SocketFetch(graph, silent=frozenset({"88.170.1/SLOW"}), timeout=0.2)
    result = run_trace("88.168.1/R", lambda h: ([], "n"), batch=batch, deadline=5)
    assert [r.handle for r in result.records] == ["88.168.1/R", "88.169.1/OK"]
    assert [(e.handle, e.reason) for e in result.errors] == [("88.170.1/SLOW", "timeout")]
    assert result.elapsed < 2


def test_a_batch_that_cannot_be_sent_fails_its_records_and_the_walk_goes_on() -> None:
    graph = {
        "88.168.1/R": [("TRACE.INPUT", "88.170.1/DOWN"), ("TRACE.INPUT", "88.169.1/OK")],
        "88.169.1/OK": [("TRACE.INPUT", "88.171.1/DEEP")],
    }
    batch = _SocketFetch(graph, refused=frozenset({"88.170.1/DOWN"}))
    result = run_trace("88.168.1/R", lambda h: ([], "n"), batch=batch)
    assert [r.handle for r in result.records] == ["88.168.1/R", "88.169.1/OK", "88.171.1/DEEP"]
    (error,) = result.errors
    assert (error.handle, error.reason) == ("88.170.1/DOWN", "error")
    assert "refused" in error.message
