"""Resolve latency with 10 thousand versus N (1 million) identifiers stored.

At 10 thousand stored, resolve random identifiers at the secondary node (1 and 16
connections) and measure the ceiling endpoint too; then register up to N through the
batch benchmark (bench/batch.py, which reports throughput, memory and disk); then the
same again with random identifiers among all N. The verdict is p50 at N over p50 at 10
thousand; the ceiling measured at both moments shows how much of a difference is the
machine's (its ratio, `machine_drift`, should stay near 1).
"""

from __future__ import annotations

from bench import batch
from bench.batch import PATTERN, ensure_loaded
from bench.config import BenchConfig
from bench.load import LoadResult, Paths, run_load
from bench.nodes import HOME, BenchEnv
from bench.report import Result, Target, print_table
from bench.resolve import FIXED

CONNECTIONS = (1, 16)


def _latencies(env: BenchEnv, stored: int, cfg: BenchConfig) -> dict[str, LoadResult]:
    """Resolve at 1 and 16 connections over identifiers 0 .. stored-1, and the ceiling."""
    base = env.url(HOME)
    ids = Paths.numbered(PATTERN, stored)
    out = {}
    for c in CONNECTIONS:
        if cfg.warmup > 0:
            run_load(base, ids, c, cfg.warmup, tool=cfg.tool)
        out[f"resolve_c{c}"] = run_load(base, ids, c, cfg.duration, tool=cfg.tool)
    out["ceiling_c1"] = run_load(base, Paths.of([FIXED]), 1, cfg.duration, tool=cfg.tool)
    return out


def run(env: BenchEnv, cfg: BenchConfig) -> list[Result]:
    """The scale benchmark; the batch and memory results of the load in between come too."""
    ensure_loaded(env, cfg.small)
    small = _latencies(env, cfg.small, cfg)
    loaded = batch.run(env, cfg)
    large = _latencies(env, cfg.n, cfg)

    def ratio(name: str) -> float:
        return large[name].p50_ms / small[name].p50_ms

    drift = ratio("ceiling_c1")
    result = Result(
        name=f"scale-{env.store}",
        config={"small": cfg.small, "large": cfg.n, "duration_s": cfg.duration},
        metrics={f"{cfg.n}": {k: r.to_json() for k, r in large.items()}},
        baseline={f"{cfg.small}": {k: r.to_json() for k, r in small.items()}},
        ratio={
            "p50_c1": ratio("resolve_c1"),
            "p50_c16": ratio("resolve_c16"),
            "machine_drift": drift,
            "p50_c1_drift_corrected": ratio("resolve_c1") / drift,
        },
        targets=[
            Target(
                f"resolve p50 at {cfg.n:,} vs {cfg.small:,} stored (c1)",
                ratio("resolve_c1"),
                1.2,
                "<=",
            )
        ],
    )
    rows = []
    for name in small:
        rows.append([name, small[name].p50_ms, large[name].p50_ms, ratio(name), large[name].rps])
    print_table(
        f"Resolve at {cfg.small:,} vs {cfg.n:,} identifiers stored ({env.store})",
        ["case", f"p50 ms @{cfg.small:,}", f"p50 ms @{cfg.n:,}", "ratio", f"req/s @{cfg.n:,}"],
        rows,
    )
    return [*loaded, result]
