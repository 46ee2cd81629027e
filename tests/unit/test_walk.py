"""The pure trace walk: random graphs with cycles and diamonds, limits, failures, deadline."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.tracer import run_trace
from clients.walk import Hop, Walk, trace_edges

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
