"""Faults on real node processes: dropped sockets, repeatable seeds, the CLI, traces."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from clients.emulator import EmulatorClient
from clients.launcher import Hierarchy
from clients.resolver import Resolver
from tests.support.hierarchy import free_ports, wait_for
from tests.support.trace_chains import run_idr

PRODUCT = "88.168.1/WARD-2024-000123"
CMD_TIMEOUT = 30.0


def idr(hierarchy: Hierarchy, *args: str) -> subprocess.CompletedProcess[str]:
    """`idr --data-dir <the hierarchy's> ...` as a user runs it, without colour."""
    return run_idr(hierarchy.data_dir, *args, timeout=CMD_TIMEOUT)


def url(hierarchy: Hierarchy, node: str) -> str:
    return hierarchy.nodes[node].url


@pytest.fixture
def nodes(running_hierarchy: Hierarchy) -> Iterator[Hierarchy]:
    """The running hierarchy, every node reset to its seed (and faults cleared) after the test."""
    yield running_hierarchy
    reset_all(running_hierarchy)


def reset_all(hierarchy: Hierarchy) -> None:
    """Reset the primary first, then every other node; wait until the backup follows again."""

    def reset(base: str) -> None:
        with EmulatorClient(base, timeout=30) as controls:
            controls.reset()

    specs = [node.spec for node in hierarchy.nodes.values()]
    primary = next(s.url for s in specs if s.role == "primary")
    reset(primary)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(reset, [s.url for s in specs if s.url != primary]))
    backups = [s.url for s in specs if s.role == "backup"]

    def following() -> bool:
        head = requests.get(f"{primary}/_emulator/status", timeout=5).json()
        for base in backups:
            state = requests.get(f"{base}/_emulator/status", timeout=5).json()
            if state["log_id"] != head["log_id"] or state["last_seq"] < head["last_seq"]:
                return False
        return True

    wait_for(following, 15, "the backup to follow the reset primary")


def log_text(hierarchy: Hierarchy, node: str) -> str:
    return hierarchy.nodes[node].log_path.read_text("utf-8", "replace")


# -- what a client sees ---------------------------------------------------------------------


def test_a_dropped_connection_is_a_connection_error_for_requests(nodes: Hierarchy) -> None:
    base = url(nodes, "furniture")
    with EmulatorClient(base) as controls:
        controls.set_faults([{"kind": "drop", "limit": 2}])
    session = requests.Session()
    for _ in range(2):  # a fresh and a pooled (kept-alive) connection alike
        with pytest.raises(requests.ConnectionError):
            session.get(f"{base}/api/handles/{PRODUCT}", timeout=5)
    resp = session.get(f"{base}/api/handles/{PRODUCT}", timeout=5)
    assert resp.status_code == 200, "the node itself survives"
    with EmulatorClient(base) as controls:
        entries = controls.journal()
    assert [(e["status"], e["fault"]) for e in entries] == [
        (None, "drop"),
        (None, "drop"),
        (200, None),
    ]
    assert "Traceback" not in log_text(nodes, "furniture")


def test_latency_beyond_the_timeout_is_a_timeout_then_the_backup_answers(nodes: Hierarchy) -> None:
    cq, cd = url(nodes, "cq-top"), url(nodes, "cd-backup")
    with EmulatorClient(cq) as controls:
        controls.set_faults([{"kind": "latency", "latencyMs": 2000}])
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{cq}/api/handles/{PRODUCT}", timeout=0.3)
    began = time.monotonic()
    with Resolver([cq, cd], timeout=0.3, deadline=2) as resolver:
        record = resolver.resolve(PRODUCT)
    assert record.served_by == cd
    assert time.monotonic() - began < 1.5


def test_failover_over_real_sockets(nodes: Hierarchy) -> None:
    cq, cd = url(nodes, "cq-top"), url(nodes, "cd-backup")
    [closed] = free_ports(1)
    with Resolver([f"http://127.0.0.1:{closed}", cq, cd]) as resolver:
        assert resolver.resolve(PRODUCT).served_by == cq
    with EmulatorClient(cq) as controls:
        controls.set_faults([{"kind": "outage", "drop": True}])
    with Resolver([cq, cd]) as resolver:
        for _ in range(5):
            assert resolver.resolve(PRODUCT, fresh=True).served_by == cd
        assert resolver.breaker.state(cq) == "open"
    with EmulatorClient(cq) as controls:
        dropped = [e for e in controls.journal() if e["fault"] == "outage"]
    assert len(dropped) == 3, "skipped once its circuit opened"


# -- the same seed, the same faults ---------------------------------------------------------


def test_the_same_fault_configuration_and_seed_repeat_the_same_faults(nodes: Hierarchy) -> None:
    base = url(nodes, "timber")
    rules = [
        {"kind": "error", "probability": 0.3, "seed": 7, "responseCode": 3, "httpStatus": 503},
        {"kind": "drop", "probability": 0.1, "seed": 8},
        {"kind": "latency", "latencyMs": 1, "latencyMaxMs": 5, "probability": 0.5, "seed": 9},
    ]
    with EmulatorClient(base) as controls:
        handles = [
            h
            for h in requests.get(f"{base}/api/handles?prefix=88.169.1", timeout=5).json()[
                "handles"
            ]
            if not h.endswith("/ADMIN")
        ][:10]
    assert handles

    def one_run() -> tuple[list[Any], list[dict[str, Any]]]:
        with EmulatorClient(base) as controls:
            controls.set_faults(rules)
            seen: list[Any] = []
            session = requests.Session()
            for i in range(60):
                try:
                    seen.append(
                        session.get(
                            f"{base}/api/handles/{handles[i % len(handles)]}", timeout=5
                        ).status_code
                    )
                except requests.ConnectionError:
                    seen.append("dropped")
            events = controls.fault_log()
        for e in events:
            del e["latencyMs"]  # drawn from the seed too, but compared exactly below
        return seen, events

    first = one_run()
    assert {200, 503, "dropped"} <= set(first[0])
    assert one_run() == first
    with EmulatorClient(base) as controls:
        controls.reset()
    assert one_run() == first, "a reset node repeats the same run too"


# -- the CLI --------------------------------------------------------------------------------


def test_idr_fault_journal_and_reset(nodes: Hierarchy) -> None:
    base = url(nodes, "furniture")
    added = idr(
        nodes,
        "fault",
        "furniture",
        "error",
        "-p",
        "100%",
        "--seed",
        "7",
        "--code",
        "3",
        "--status",
        "503",
        "--route",
        "/api/handles/*",
        "--prefix",
        "88.168.1",
    )
    assert added.returncode == 0, added.stderr
    assert "faults on furniture" in added.stdout and "responseCode 3 HTTP 503" in added.stdout
    latency = idr(nodes, "fault", "furniture", "latency", "--ms", "5", "--json")
    assert [r["kind"] for r in json.loads(latency.stdout)] == ["error", "latency"]

    assert requests.get(f"{base}/api/handles/{PRODUCT}", timeout=5).status_code == 503
    journal = idr(nodes, "journal", "furniture", "--json")
    assert journal.returncode == 0, journal.stderr
    [entry] = json.loads(journal.stdout)
    assert (entry["status"], entry["responseCode"], entry["fault"]) == (503, 3, "error")
    assert entry["handle"] == PRODUCT and entry["durationMs"] >= 5
    table = idr(nodes, "journal", "furniture")
    assert f"/api/handles/{PRODUCT}" in table.stdout and "503" in table.stdout

    listed = idr(nodes, "fault", "furniture", "list", "--json")
    assert [r["injected"] for r in json.loads(listed.stdout)] == [1, 1]
    log = idr(nodes, "fault", "furniture", "log", "--json")
    assert [e["rule"] for e in json.loads(log.stdout)] == ["f1", "f2"]
    removed = idr(nodes, "fault", "furniture", "remove", "--id", "f2", "--json")
    assert [r["id"] for r in json.loads(removed.stdout)] == ["f1"]

    # A write, then reset: the seeded state is back and the faults are gone.
    with EmulatorClient(base) as controls:
        controls.clear_faults()
    new = "88.168.1/CLI-RESET-1"
    write = requests.put(
        f"{base}/api/handles/{new}",
        json={"values": [{"index": 1, "type": "URL", "data": "https://x.test"}]},
        auth=("300%3A88.168.1/ADMIN", "demo-88.168.1-secret"),
        timeout=10,
    )
    assert write.status_code == 201, write.text
    idr(nodes, "fault", "furniture", "outage")
    reset = idr(nodes, "reset")
    assert reset.returncode == 0, reset.stderr
    for name in nodes.nodes:
        assert f"{name}: reset to its seed" in reset.stdout
    assert requests.get(f"{base}/api/handles/{new}", timeout=5).status_code == 404
    assert requests.get(f"{base}/api/handles/{PRODUCT}", timeout=5).status_code == 200
    assert json.loads(idr(nodes, "fault", "furniture", "list", "--json").stdout) == []

    cleared = idr(nodes, "fault", "furniture", "drop", "--probability", "0")
    assert cleared.returncode == 0
    assert "no faults" in idr(nodes, "fault", "furniture", "clear").stdout


def test_idr_fault_usage_errors(nodes: Hierarchy) -> None:
    unknown = idr(nodes, "fault", "nowhere", "list")
    assert unknown.returncode == 2 and "no node named 'nowhere'" in unknown.stderr
    assert "furniture" in unknown.stderr
    bad = idr(nodes, "fault", "furniture", "error", "-p", "150%")
    assert bad.returncode == 2 and "not between 0 and 1" in bad.stderr
    refused = idr(nodes, "fault", "furniture", "latency")
    assert refused.returncode == 1 and "latencyMs" in refused.stderr
    [closed] = free_ports(1)
    gone = idr(nodes, "journal", f"http://127.0.0.1:{closed}")
    assert gone.returncode == 4 and "unreachable" in gone.stderr


# -- traces under faults (Must show) --------------------------------------------------------


def _trace(nodes: Hierarchy, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    result = idr(nodes, "trace", PRODUCT, "--json", *args)
    return result, time.monotonic() - began


def _timber_ids(trace: dict[str, Any]) -> set[str]:
    return {r["handle"] for r in trace["records"] if r["handle"].startswith("88.169.")}


def test_a_trace_through_30_percent_errors_completes_or_names_what_is_missing(
    nodes: Hierarchy,
) -> None:
    clean, _ = _trace(nodes)
    assert clean.returncode == 0, clean.stderr
    timber = _timber_ids(json.loads(clean.stdout))
    assert timber, "the demo product draws on timber lots"
    with EmulatorClient(url(nodes, "timber")) as controls:
        controls.set_faults([{"kind": "error", "probability": 0.3, "seed": 30}])
        result, _ = _trace(nodes)
        injected = controls.fault_log()
    assert injected, "errors were injected"
    assert result.returncode in (0, 3), result.stderr
    trace = json.loads(result.stdout)
    got = _timber_ids(trace)
    missing = {e["handle"] for e in trace["errors"]}
    if result.returncode == 0:
        assert got == timber and not missing
    else:
        assert missing and missing <= timber and got | missing == timber
        assert all(h in result.stderr for h in missing)


@pytest.mark.parametrize(
    "outage",
    [
        {"kind": "outage"},
        {"kind": "outage", "drop": True},
        {"kind": "latency", "latencyMs": 30_000},  # a node that hangs
    ],
    ids=["503", "dropped", "hanging"],
)
def test_a_trace_through_a_full_outage_ends_by_its_deadline_naming_the_missing(
    nodes: Hierarchy, outage: dict[str, Any]
) -> None:
    clean, baseline = _trace(nodes)  # what a fast trace costs here, Python start-up included
    timber = _timber_ids(json.loads(clean.stdout))
    with EmulatorClient(url(nodes, "timber")) as controls:
        controls.set_faults([outage])
        result, took = _trace(nodes, "--deadline", "2", "--timeout", "1")
    assert result.returncode == 3, result.stderr
    trace = json.loads(result.stdout)
    assert trace["stats"]["elapsedMs"] <= 2000 + 250, trace["stats"]
    assert took < baseline + 2 + 1.5, f"idr trace took {took:.1f}s (a clean one {baseline:.1f}s)"
    assert trace["records"] and trace["records"][0]["handle"] == PRODUCT
    missing = {e["handle"] for e in trace["errors"]}
    wanted = {e["to"] for e in trace["edges"] if e["to"].startswith("88.169.")}
    assert wanted and wanted <= missing, "every timber record a fetched record names is missing"
    assert missing & timber and not _timber_ids(trace)
    assert "partial trace" in result.stderr and all(h in result.stderr for h in missing)
