"""Trace of the sample product: cold and warm, against its critical path and a sequential walk.

- trace, cold: `GET /api/trace/<product>` at the top-level node right after its recursion
  cache was emptied (every hop goes to a secondary node); warm: the same again.
- single hop: `GET /api/handles/<id>` of each record of the graph at the secondary node
  that holds it, one at a time over a kept-alive connection (the median).
- critical path: (1 + waves) × single hop. `waves` is the longest chain of dependent
  fetches of the graph (counted by walking the recorded graph with the tracer's own walk,
  enterprise look-ups included); the 1 is the client's request to the top-level node.
- sequential walk: the same graph walked by the tracer with one fetch at a time, straight
  from the secondary nodes (no top-level node in between: the cheapest sequential walk).
"""

from __future__ import annotations

import queue
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests

from bench.config import BenchConfig
from bench.nodes import TOP, BenchEnv
from bench.report import Result, Target, print_table
from clients.tracer import DEFAULT_MAX_DEPTH, DEFAULT_MAX_RECORDS, run_trace
from clients.walk import Walk
from idcore.errors import HandleError, error_for_code
from idcore.identifier import NA_PREFIX, fold

Values = list[dict[str, Any]]


class DirectFetch:
    """Fetch a record straight from the secondary node that holds it; remembers the graph."""

    def __init__(self, env: BenchEnv) -> None:
        self.nodes = {s.prefix: s.url for s in env.hierarchy.topology.secondaries}
        self.graph: dict[str, Values] = {}
        # Sessions are lent per request, so their kept-alive connections outlive the
        # tracer's thread pool (a new one per trace): no trace pays for connecting.
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()

    def home(self, handle: str) -> str:
        """Base URL of the secondary node that holds `handle` (0.NA/<prefix>: its prefix's)."""
        prefix, _, suffix = handle.partition("/")
        if fold(prefix) == fold(NA_PREFIX):
            prefix = suffix
        node = ".".join(prefix.split(".")[:2])
        if node not in self.nodes:
            raise error_for_code(100)(f"no benchmark node holds {handle!r}", handle=handle)
        return self.nodes[node]

    def get(self, handle: str) -> requests.Response:
        """GET the record at its node over a kept-alive connection."""
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = requests.Session()
        try:
            url = f"{self.home(handle)}/api/handles/{quote(handle, safe='/')}"
            return session.get(url, timeout=10)
        finally:
            self._sessions.put(session)

    def close(self) -> None:
        """Close every session."""
        while not self._sessions.empty():
            self._sessions.get_nowait().close()

    def __call__(self, handle: str) -> tuple[Values, str]:
        resp = self.get(handle)
        body = resp.json()
        code = int(body.get("responseCode", 2))
        if resp.status_code != 200 or code not in (1, 200):
            error: HandleError = error_for_code(code)(str(body.get("message")), handle=handle)
            raise error
        values: Values = body.get("values", [])
        self.graph[handle] = values
        return values, self.home(handle)


def count_waves(root: str, graph: dict[str, Values]) -> int:
    """Rounds of dependent fetches the tracer needs for this graph (its critical path)."""
    walk = Walk(
        root, max_depth=DEFAULT_MAX_DEPTH, max_records=DEFAULT_MAX_RECORDS, enterprises=True
    )
    while not walk.done:
        for hop in walk.take():
            values = graph.get(hop.handle)
            if values is None:
                walk.failed(hop, "not_found", f"{hop.handle} was not in the recorded graph")
            else:
                walk.found(hop, values, "recorded")
    return walk.wave


def _p(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def run(env: BenchEnv, cfg: BenchConfig) -> Result:
    """Cold and warm trace, single hop, critical path and sequential walk, in one run.

    Every repetition measures each case once, one after the other, so a busy moment of
    the machine weighs on all of them alike.
    """
    product = env.product
    direct = DirectFetch(env)
    session = requests.Session()
    url = f"{env.url(TOP)}/api/trace/{quote(product, safe='/')}"

    def server_trace() -> dict[str, Any]:
        resp = session.get(url, timeout=30)
        body: dict[str, Any] = resp.json()
        if resp.status_code != 200 or not body.get("complete") or body.get("errors"):
            raise RuntimeError(f"trace incomplete: {resp.status_code} {body.get('errors')}")
        return body

    hops: list[float] = []
    sequential: list[float] = []
    parallel: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    server_cold: list[float] = []
    try:
        first = run_trace(product, direct, workers=1)  # records the graph (and warms the nodes)
        if first.errors:
            raise RuntimeError(f"the sample product does not trace completely: {first.errors[:3]}")
        waves = count_waves(product, direct.graph)
        records = len(direct.graph)
        server_trace()
        for _ in range(cfg.repeats):
            for handle in direct.graph:
                began = time.perf_counter()
                direct.get(handle).raise_for_status()
                hops.append(time.perf_counter() - began)
            sequential.append(_timed(lambda: run_trace(product, direct, workers=1)))
            parallel.append(_timed(lambda: run_trace(product, direct, workers=16)))
            env.clear_cache(TOP)  # not timed: the cold trace starts after it
            began = time.perf_counter()
            body = server_trace()
            cold.append(time.perf_counter() - began)
            server_cold.append(float(body["stats"]["elapsedMs"]) / 1000)
            warm.append(_timed(server_trace))
    finally:
        direct.close()
        session.close()
    hop = statistics.median(hops)

    cold_p50, warm_p50 = statistics.median(cold), statistics.median(warm)
    seq_p50 = statistics.median(sequential)
    critical = (1 + waves) * hop
    ms = 1000.0
    result = Result(
        name=f"trace-{env.store}",
        config={"product": product, "repeats": cfg.repeats},
        metrics={
            "records": records,
            "waves": waves,
            "cold_p50_ms": cold_p50 * ms,
            "cold_p90_ms": _p(cold, 90) * ms,
            "cold_server_p50_ms": statistics.median(server_cold) * ms,
            "warm_p50_ms": warm_p50 * ms,
            "warm_p90_ms": _p(warm, 90) * ms,
            "client_parallel_walk_p50_ms": statistics.median(parallel) * ms,
        },
        baseline={
            "single_hop_p50_ms": hop * ms,
            "critical_path_ms": critical * ms,
            "critical_path_hops": 1 + waves,
            "sequential_walk_p50_ms": seq_p50 * ms,
        },
        ratio={
            "cold_vs_critical_path": cold_p50 / critical,
            "warm_vs_critical_path": warm_p50 / critical,
            "sequential_vs_cold": seq_p50 / cold_p50,
        },
        targets=[
            Target("cold trace vs critical path", cold_p50 / critical, 1.5, "<="),
            Target("sequential walk vs cold trace (speed-up)", seq_p50 / cold_p50, 4.0, ">="),
        ],
    )
    if (cfg.workers or 1) > 1:
        result.notes.append(
            "several workers per node: each has its own recursion cache, so cache clears "
            "and the warm-up reach only some of them (cold and warm are approximate)"
        )
    print_table(
        f"Trace of {product} on {env.store} ({records} records, {waves} waves, "
        f"{cfg.repeats} runs each)",
        ["case", "p50 ms", "vs critical path"],
        [
            ["trace, cold (GET /api/trace)", cold_p50 * ms, cold_p50 / critical],
            ["trace, warm", warm_p50 * ms, warm_p50 / critical],
            ["critical path: (1 + waves) × single hop", critical * ms, 1.0],
            ["single hop (direct GET)", hop * ms, hop / critical],
            ["sequential walk (1 fetch at a time)", seq_p50 * ms, seq_p50 / critical],
            [
                "client parallel walk (16 at a time)",
                statistics.median(parallel) * ms,
                statistics.median(parallel) / critical,
            ],
        ],
    )
    return result
