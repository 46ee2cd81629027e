"""`python -m bench`: run the benchmarks of issue 7 (`make bench`, `make bench-quick`).

Each benchmark prints a table and writes bench/results/<name>-<store>.json; the run ends
with every target, met or missed, and bench/results/summary.md for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import batch, resolve, scale, trace
from bench.config import BenchConfig
from bench.load import pick_tool
from bench.nodes import BenchEnv, StoreKind, running
from bench.plan import plan_markdown
from bench.report import (
    RESULTS_DIR,
    Result,
    console,
    finish_machine,
    machine_info,
    print_targets,
    read_results,
    summary_markdown,
    write_result,
)
from tests.support.redis_server import redis_available

BENCHMARKS = ("resolve", "trace", "batch", "scale")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: all; scale includes batch and memory)",
    )
    p.add_argument("--quick", action="store_true", help="short runs and 20k identifiers")
    p.add_argument("--store", action="append", choices=["sqlite", "redis"], dest="stores")
    p.add_argument("--n", type=int, help="identifiers for batch, memory and scale (1000000)")
    p.add_argument("--duration", type=float, help="seconds per load run")
    p.add_argument("--warmup", type=float, help="seconds of warm-up before each load run")
    p.add_argument("--connections", help="comma-separated connection counts (1,16,64)")
    p.add_argument("--repeats", type=int, help="runs per trace case")
    p.add_argument("--tool", choices=["auto", "wrk", "python"], help="load generator")
    p.add_argument(
        "--workers",
        type=int,
        help="gunicorn workers per node for every benchmark (default: one per core, and 1 "
        "for trace, whose cold cache needs a single worker)",
    )
    p.add_argument("--threads", type=int, help="gunicorn threads per worker (node default)")
    p.add_argument(
        "--node-env",
        action="append",
        default=[],
        metavar="IDR_NAME=VALUE",
        help="a setting for every node (repeatable), e.g. IDR_ACCESS_LOG=false",
    )
    p.add_argument("--results", type=Path, help=f"result directory ({RESULTS_DIR})")
    p.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: rewrite summary.md from the result files already written",
    )
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    """The run's configuration: --quick or full, with the options given on top."""
    overrides: dict[str, Any] = {}
    for name in ("n", "duration", "warmup", "repeats", "tool", "workers", "threads", "results"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.connections:
        overrides["connections"] = tuple(int(c) for c in args.connections.split(","))
    pairs = []
    for item in args.node_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("IDR_"):
            raise SystemExit(f"--node-env {item!r}: write IDR_NAME=VALUE")
        pairs.append((name, value))
    if pairs:
        overrides["node_env"] = tuple(pairs)
    return BenchConfig.short(**overrides) if args.quick else BenchConfig.full(**overrides)


def _stop(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every node and Redis server started is stopped.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks on each store; 0 unless a benchmark could not run."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    cfg = config_from(args)
    if args.summary:
        written, last = read_results(cfg.results)
        write_summary(written, last, cfg.results)
        return 0
    chosen = set(args.benchmarks or BENCHMARKS)
    stores: list[StoreKind] = args.stores or ["sqlite", "redis"]
    signal.signal(signal.SIGTERM, _stop)
    machine = machine_info()
    machine["load_tool"] = pick_tool(cfg.tool)
    console.print(
        f"[bold]idr benchmarks[/bold]{' (quick)' if cfg.quick else ''}: {machine['cpu']}, "
        f"{machine['cores']} cores, load {machine['loadavg_start'][0]:.1f}, calibration "
        f"{machine['calibration_start']}/s, tool {machine['load_tool']}, "
        f"{cfg.duration:g} s runs, n={cfg.n:,}"
    )
    results: list[Result] = []
    began = time.monotonic()
    for store in stores:
        if store == "redis" and not redis_available():
            console.print("[yellow]redis-server is not installed: Redis benchmarks skipped")
            continue
        for workers, names in _hierarchies(cfg, chosen):
            run_cfg = cfg.with_workers(workers)
            with running(
                store, workers=workers, threads=cfg.threads, node_env=dict(cfg.node_env)
            ) as env:
                console.rule(
                    f"{store}: nodes up at {env.top} (top) and {env.home} (home), "
                    f"{workers} worker(s) per node"
                )
                found = _run_benchmarks(env, run_cfg, names)
            for result in found:
                result.config = {**run_cfg.to_json(), **result.config}
                write_result(result, machine, cfg.results)
            results.extend(found)
    finish_machine(machine)
    machine["seconds"] = round(time.monotonic() - began, 1)
    for result in results:
        write_result(result, machine, cfg.results)
    print_targets(results)
    write_summary(results, machine, cfg.results)
    return 0


def _hierarchies(cfg: BenchConfig, chosen: set[str]) -> list[tuple[int, list[str]]]:
    """Benchmarks grouped by the workers per node they run with (BenchConfig.workers_for)."""
    groups: dict[int, list[str]] = {}
    for name in BENCHMARKS:
        if name in chosen:
            groups.setdefault(cfg.workers_for(name), []).append(name)
    return list(groups.items())


def _run_benchmarks(env: BenchEnv, cfg: BenchConfig, names: list[str]) -> list[Result]:
    """Run the named benchmarks on one hierarchy, in BENCHMARKS order."""
    found: list[Result] = []
    if "resolve" in names:
        found.append(resolve.run(env, cfg))
    if "trace" in names:
        found.append(trace.run(env, cfg))
    if "scale" in names:
        found.extend(scale.run(env, cfg))
    elif "batch" in names:
        found.extend(batch.run(env, cfg))
    return found


def write_summary(results: list[Result], machine: dict[str, Any], directory: Path) -> None:
    """summary.md: every target, and the plan for Chongqing's scale, for BENCHMARKS.md."""
    summary = directory / "summary.md"
    text = summary_markdown(results, machine)
    text += "\n## Paper plan for Chongqing's scale\n\n" + plan_markdown(results)
    summary.write_text(text)
    console.print(f"results in {directory} ({len(results)} benchmarks), summary in {summary}")


if __name__ == "__main__":
    sys.exit(main())
