"""A paper plan for Chongqing's scale from the per-identifier figures a run measured.

Chongqing's top-level node by October 2024: 56 secondary nodes, 36.8 billion identifiers
(PROTOCOL.md). Nationally about 150 million resolutions a day in January 2024: 1,736 a
second on average. The assumptions below are stated where they are used; everything
else comes from the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import Result

IDENTIFIERS = 36.8e9
SECONDARY_NODES = 56
NATIONAL_RPS = 1_736
PEAK_FACTOR = 10
"""Design peak over the daily average (assumption: scans cluster in working hours)."""
SHARD_GIB = 25
"""Data per Redis master (assumption: small enough to resync and fail over in minutes)."""
MACHINE_GIB = 256
MACHINE_FILL = 0.7
"""RAM of one cache server and the share Redis may use (assumption)."""
GIB = 1024**3
TB = 1e12


@dataclass(frozen=True)
class Line:
    """One line of the plan."""

    what: str
    value: str
    how: str


def _metric(results: Sequence[Result], name: str, key: str) -> float | None:
    for result in results:
        if result.name == name:
            value = result.metrics.get(key)
            return float(value) if isinstance(value, int | float) else None
    return None


def _resolve_rps(results: Sequence[Result], store: str) -> float | None:
    for result in results:
        if result.name == f"resolve-{store}":
            direct: dict[str, Any] = result.metrics.get("direct", {})
            best = max(direct, key=lambda c: int(c[1:]), default=None)
            return float(direct[best]["rps"]) if best else None
    return None


def plan(results: Sequence[Result]) -> list[Line]:
    """The plan lines that the results allow (a figure not measured leaves its lines out)."""
    lines: list[Line] = []
    per_node = IDENTIFIERS / SECONDARY_NODES
    lines.append(
        Line("identifiers per secondary node", f"{per_node / 1e9:.2f} billion", "36.8 bn / 56")
    )
    memory = _metric(results, "memory-redis", "used_memory_per_id")
    if memory:
        total = IDENTIFIERS * memory
        shards = math.ceil(total / (SHARD_GIB * GIB))
        per_machine = max(1, int(MACHINE_GIB * MACHINE_FILL // SHARD_GIB))
        machines = math.ceil(2 * shards / per_machine)
        lines += [
            Line("Redis memory per identifier", f"{memory:,.0f} B", "measured (INFO memory)"),
            Line("Redis memory, all identifiers", f"{total / TB:,.1f} TB", "36.8 bn × B/id"),
            Line(
                "Redis Cluster masters",
                f"{shards:,} ({math.ceil(shards / SECONDARY_NODES)} per secondary node)",
                f"total / {SHARD_GIB} GiB per master",
            ),
            Line(
                "servers for masters + 1 replica each",
                f"{machines:,}",
                f"{per_machine} shards per {MACHINE_GIB} GiB server at {MACHINE_FILL:.0%}",
            ),
        ]
        if memory > 1024:
            at_target = math.ceil(IDENTIFIERS * 1024 / (SHARD_GIB * GIB))
            lines.append(
                Line("masters at the 1 KiB target", f"{at_target:,}", "36.8 bn × 1 KiB / 25 GiB")
            )
    aof = _metric(results, "memory-redis", "aof_bytes_per_id")
    if aof:
        lines.append(
            Line(
                "Redis AOF on disk", f"{IDENTIFIERS * aof / TB:,.1f} TB", "measured B/id × 36.8 bn"
            )
        )
    disk = _metric(results, "memory-sqlite", "db_bytes_per_id")
    if disk:
        lines += [
            Line(
                "SQLite bytes per identifier", f"{disk:,.0f} B", "measured (file after checkpoint)"
            ),
            Line(
                "SQLite disk, all identifiers",
                f"{IDENTIFIERS * disk / TB:,.1f} TB ({per_node * disk / TB:,.2f} TB per node)",
                "36.8 bn × B/id",
            ),
        ]
    for store in ("redis", "sqlite"):
        rate = _metric(results, f"batch-{store}", "per_second")
        if rate:
            days = per_node / rate / 86400
            lines.append(
                Line(
                    f"bulk load of one node's identifiers ({store})",
                    f"{days:,.1f} days",
                    f"{per_node / 1e9:.2f} bn / {rate:,.0f} ids/s (one node process)",
                )
            )
    rps = _resolve_rps(results, "redis") or _resolve_rps(results, "sqlite")
    if rps:
        peak = NATIONAL_RPS * PEAK_FACTOR
        lines.append(
            Line(
                "node processes for the national peak",
                f"{math.ceil(peak / rps):,} (2-core boxes)",
                f"{NATIONAL_RPS:,}/s × {PEAK_FACTOR} peak / {rps:,.0f} req/s measured per node",
            )
        )
    return lines


def plan_markdown(results: Sequence[Result]) -> str:
    """The plan as a Markdown table."""
    out = ["| figure | value | from |", "|---|---|---|"]
    out += [f"| {line.what} | {line.value} | {line.how} |" for line in plan(results)]
    return "\n".join(out) + "\n"
