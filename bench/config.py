"""How long, how many, how hard: one object every benchmark reads."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.load import Tool
from bench.report import RESULTS_DIR

SMALL = 10_000
"""Identifiers stored for the resolve benchmarks and the small end of the scale benchmark."""


@dataclass(frozen=True)
class BenchConfig:
    """Durations, sizes and connection counts of one run."""

    quick: bool = False
    duration: float = 10.0
    warmup: float = 2.0
    connections: tuple[int, ...] = (1, 16, 64)
    n: int = 1_000_000
    small: int = SMALL
    repeats: int = 30
    tool: Tool = "auto"
    workers: int | None = None
    """gunicorn workers per node for every benchmark; None: see workers_for()."""
    threads: int | None = None
    node_env: tuple[tuple[str, str], ...] = ()
    """Extra IDR_* settings for every node, e.g. (("IDR_ACCESS_LOG", "false"),)."""
    results: Path = RESULTS_DIR

    @classmethod
    def full(cls, **overrides: Any) -> BenchConfig:
        """What `make bench` runs (about half an hour on a quiet 2-core machine)."""
        return cls(**overrides)

    @classmethod
    def short(cls, **overrides: Any) -> BenchConfig:
        """What `make bench-quick` runs: every benchmark, small and brief (a few minutes)."""
        base: dict[str, Any] = {
            "quick": True,
            "duration": 2.0,
            "warmup": 0.5,
            "n": 20_000,
            "repeats": 5,
        }
        return cls(**{**base, **overrides})

    def workers_for(self, benchmark: str) -> int:
        """Workers per node for a benchmark: --workers if given, else as a 2-core box runs.

        Throughput is measured with one worker per core, as a node on such a box is
        deployed (`IDR_WORKERS`): one worker runs Python on one core at a time. The
        trace runs with one worker per node, so that clearing the top-level node's
        recursion cache makes the next trace cold (each worker has its own cache).
        """
        if self.workers is not None:
            return self.workers
        return 1 if benchmark == "trace" else max(1, os.cpu_count() or 1)

    def with_workers(self, workers: int) -> BenchConfig:
        """This configuration with the worker count a hierarchy was started with."""
        return replace(self, workers=workers)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, for the result files."""
        out = asdict(self)
        out["connections"] = list(self.connections)
        out["node_env"] = dict(self.node_env)
        out["results"] = str(self.results)
        return out
