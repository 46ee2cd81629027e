"""The pure parts of bench/: request paths, targets, batch bodies, the critical-path count."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.__main__ import _hierarchies
from bench.batch import PATTERN, Bodies, bench_handle
from bench.config import BenchConfig
from bench.load import Paths, run_load
from bench.report import Result, Target, summary_markdown
from bench.trace import count_waves


def test_numbered_paths() -> None:
    paths = Paths.numbered(PATTERN, 3, start=5)
    assert len(paths) == 3
    assert [paths.path(i) for i in range(3)] == [
        "/api/handles/88.168.1/B0000005",
        "/api/handles/88.168.1/B0000006",
        "/api/handles/88.168.1/B0000007",
    ]
    assert paths.path(0) == f"/api/handles/{bench_handle(5)}"
    listed = Paths.of(["/a", "/b"])
    assert (len(listed), listed.path(1)) == (2, "/b")
    with pytest.raises(ValueError):
        Paths.numbered(PATTERN, 0)
    with pytest.raises(ValueError):
        Paths.of([])


@pytest.mark.parametrize(
    "url",
    ["http://example.com:80", "https://127.0.0.1:8443", "http://127.0.0.1", "http://10.0.0.1:80"],
)
def test_load_only_targets_loopback(url: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        run_load(url, Paths.of(["/"]), 1, 1.0, tool="python")


def test_load_is_bounded() -> None:
    with pytest.raises(ValueError, match="connections"):
        run_load("http://127.0.0.1:9", Paths.of(["/"]), 1000, 1.0, tool="python")
    with pytest.raises(ValueError, match="connections"):
        run_load("http://127.0.0.1:9", Paths.of(["/"]), 1, 3600, tool="python")


def test_targets_and_summary() -> None:
    fast = Target("throughput", 3500, 3000, ">=", "req/s")
    slow = Target("p99", 80, 50, "<=", "ms")
    assert fast.ok and not slow.ok
    assert slow.miss == "1.60× of the limit"
    result = Result("resolve-sqlite", {}, {}, {"x": 1.0}, targets=[fast, slow])
    text = summary_markdown([result], {"cpu": "test"})
    assert "| resolve-sqlite | p99 | 80 | <= 50 ms | **no** (1.60× of the limit) |" in text
    assert result.to_json({"cpu": "test"})["targets"][0]["ok"] is True


def test_batch_items_are_copies_of_the_sample_product() -> None:
    maker = Bodies()
    item = json.loads(maker.item(42))
    assert item["handle"] == "88.168.1/B0000042"
    by_type = {v["type"]: v["data"] for v in item["values"]}
    assert by_type["serial_no"]["value"] == "B0000042"
    assert by_type["URL"]["value"].endswith("/t/88.168.1/B0000042")
    assert by_type["IDIS.TEMPLATE"]["value"] == "furniture.product@1"
    assert len(item["values"]) == len(maker.values)
    body = json.loads(maker.body(10, 3))
    assert [i["handle"] for i in body["handles"]] == [bench_handle(i) for i in (10, 11, 12)]
    assert body["overwrite"] is False
    record = maker.records(7, 1)[0]
    assert record.handle == bench_handle(7) and all("timestamp" in v for v in record.values)


def _edges(*targets: str) -> list[dict[str, Any]]:
    return [
        {"index": 3000 + i, "type": "TRACE.INPUT", "data": {"format": "string", "value": t}}
        for i, t in enumerate(targets)
    ]


def test_waves_count_the_longest_chain_of_dependent_fetches() -> None:
    graph = {
        "88.168.1/P": _edges("88.168.1/A", "88.169.1/B"),
        "88.168.1/A": _edges("88.170.1/C"),
        "88.169.1/B": _edges("88.170.1/C"),  # a diamond: C is fetched once
        "88.170.1/C": [],
    }
    assert count_waves("88.168.1/P", graph) == 3
    assert count_waves("88.168.1/P", {"88.168.1/P": []}) == 1
    # A cycle ends: each identifier is fetched once.
    loop = {"88.168.1/X": _edges("88.168.1/Y"), "88.168.1/Y": _edges("88.168.1/X")}
    assert count_waves("88.168.1/X", loop) == 2


def test_throughput_runs_one_worker_per_core_and_the_trace_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    every = {"resolve", "trace", "batch", "scale"}
    # Trace alone on a hierarchy of single workers: its cache clear must reach them all.
    assert _hierarchies(BenchConfig.short(), every) == [
        (2, ["resolve", "batch", "scale"]),
        (1, ["trace"]),
    ]
    assert _hierarchies(BenchConfig.short(), {"trace"}) == [(1, ["trace"])]
    # --workers: one hierarchy for everything.
    assert _hierarchies(BenchConfig.short(workers=3), every) == [
        (3, ["resolve", "trace", "batch", "scale"])
    ]
    assert BenchConfig.short().with_workers(2).to_json()["workers"] == 2
