"""How long, how many, how hard: one object every benchmark reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    def to_json(self) -> dict[str, Any]:
        """The JSON form, for the result files."""
        out = asdict(self)
        out["connections"] = list(self.connections)
        out["node_env"] = dict(self.node_env)
        out["results"] = str(self.results)
        return out
