"""Resolve throughput and latency: a secondary node directly, and through the top-level node.

Cases, each at 1, 16 and 64 connections, every request another identifier (random among
the stored benchmark identifiers):

- ceiling: `GET /_emulator/bench/fixed`, a fixed Handle JSON answer from the same app,
  WSGI server and workers (idcore/bench_api.py), on the secondary and the top-level node;
- direct: `GET /api/handles/<id>` at the secondary node that holds the identifiers;
- recursive, warm: the same at the top-level node after a pass over every identifier,
  so every answer comes from its cache (checked through /_emulator/bench/info), next
  to direct resolve measured again at the same moment;
- recursive, cold: the same with `?auth=true` (an authoritative query: the top-level
  node bypasses its cache and fetches from the secondary node every time).
"""

from __future__ import annotations

from typing import Any

from bench.batch import PATTERN, ensure_loaded
from bench.config import BenchConfig
from bench.load import LoadResult, Paths, run_load
from bench.nodes import HOME, TOP, BenchEnv
from bench.report import Result, Target, print_table

FIXED = "/_emulator/bench/fixed"
WARM_LIMIT = 300.0
"""Seconds the cache warm-up may take at most (every identifier is one cold fetch)."""


def _measure(base: str, paths: Paths, connections: int, cfg: BenchConfig) -> LoadResult:
    """A short warm-up at the same concurrency, then the measured run."""
    if cfg.warmup > 0:
        run_load(base, paths, connections, cfg.warmup, tool=cfg.tool)
    return run_load(base, paths, connections, cfg.duration, tool=cfg.tool)


def warm_cache(env: BenchEnv, paths: Paths, cfg: BenchConfig, miss_rate: float) -> dict[str, Any]:
    """Resolve every identifier through the top-level node (each a miss); its cache after.

    One pass in order takes len(paths) / miss_rate seconds; a second pass in random order
    fills what the first left out. Never longer than WARM_LIMIT seconds in all.
    """
    wanted = len(paths)
    seconds = min(WARM_LIMIT / 2, max(1.0, 1.3 * wanted / max(miss_rate, 10.0)))
    run_load(env.top, paths, 16, seconds, order="seq", tool=cfg.tool)
    info = env.info(TOP)
    if info["cache"]["size"] < wanted:
        run_load(env.top, paths, 16, seconds, tool=cfg.tool)
        info = env.info(TOP)
    return dict(info["cache"])


def run(env: BenchEnv, cfg: BenchConfig) -> Result:
    """Every case at every connection count; ratios against the ceiling and direct resolve.

    Cases that a ratio compares run back to back at each connection count, so a busy
    moment of the machine affects both sides of the ratio alike.
    """
    ensure_loaded(env, cfg.small)
    ids = Paths.numbered(PATTERN, cfg.small)
    cold = Paths.numbered(PATTERN + "?auth=true", cfg.small)
    fixed = Paths.of([FIXED])
    results: dict[str, dict[int, LoadResult]] = {}

    def measure(name: str, base: str, paths: Paths, c: int) -> None:
        results.setdefault(name, {})[c] = _measure(base, paths, c, cfg)

    for c in cfg.connections:
        measure("ceiling_secondary", env.url(HOME), fixed, c)
        measure("direct", env.url(HOME), ids, c)
        measure("ceiling_top", env.url(TOP), fixed, c)
        measure("recursive_cold", env.url(TOP), cold, c)
    miss_rate = results["recursive_cold"][16 if 16 in cfg.connections else max(cfg.connections)]
    cache = warm_cache(env, ids, cfg, miss_rate.rps)
    for c in cfg.connections:
        measure("direct_again", env.url(HOME), ids, c)
        measure("recursive_warm", env.url(TOP), ids, c)
    cache_after = env.info(TOP)["cache"]

    top_c = max(cfg.connections)
    direct, ceiling = results["direct"][top_c], results["ceiling_secondary"][top_c]
    warm, direct_again = results["recursive_warm"][top_c], results["direct_again"][top_c]
    ratio = {}
    for c in cfg.connections:
        d = results["direct"][c]
        ratio[f"direct_vs_ceiling_c{c}"] = d.rps / results["ceiling_secondary"][c].rps
        ratio[f"cold_vs_direct_c{c}"] = results["recursive_cold"][c].rps / d.rps
        ratio[f"warm_vs_direct_c{c}"] = (
            results["recursive_warm"][c].rps / results["direct_again"][c].rps
        )
    warm_hits = cache_after["hits"] - cache["hits"]
    warm_misses = cache_after["misses"] - cache["misses"]
    result = Result(
        name=f"resolve-{env.store}",
        config={
            "identifiers": cfg.small,
            "connections": list(cfg.connections),
            "duration_s": cfg.duration,
            "warmup_s": cfg.warmup,
        },
        metrics={
            name: {f"c{c}": r.to_json() for c, r in by_c.items()}
            for name, by_c in results.items()
            if not name.startswith("ceiling")
        }
        | {"warm_cache": {"size": cache["size"], "hits": warm_hits, "misses": warm_misses}},
        baseline={
            name: {f"c{c}": r.to_json() for c, r in by_c.items()}
            for name, by_c in results.items()
            if name.startswith("ceiling")
        },
        ratio=ratio,
        targets=[
            Target(f"direct resolve vs ceiling (c{top_c})", direct.rps / ceiling.rps, 0.8, ">="),
            Target(f"direct resolve throughput (c{top_c})", direct.rps, 3000, ">=", "req/s"),
            Target(f"direct resolve p99 (c{top_c})", direct.p99_ms, 50, "<=", "ms"),
            Target(f"warm recursive vs direct (c{top_c})", warm.rps / direct_again.rps, 0.7, ">="),
        ],
    )
    if (cfg.workers or 1) > 1:
        result.notes.append(
            "several workers per node: each has its own recursion cache, so cache clears "
            "and the warm-up reach only some of them (cold and warm are approximate)"
        )
    if warm_misses > warm_hits * 0.01:
        result.notes.append(
            f"the warm run missed the cache {warm_misses} times ({warm_hits} hits): "
            "it was not entirely warm"
        )
    rows = []
    for name, by_c in results.items():
        for c, r in by_c.items():
            rows.append([name, c, r.rps, r.p50_ms, r.p99_ms, r.errors, r.tool])
    print_table(
        f"Resolve on {env.store} ({cfg.small:,} identifiers stored, {cfg.duration:g} s per run)",
        ["case", "conns", "req/s", "p50 ms", "p99 ms", "errors", "tool"],
        rows,
    )
    return result
