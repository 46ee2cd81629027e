"""`idr trace` against real node processes: full, partial (a node stopped), slow (deadline)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests

from clients.launcher import Hierarchy
from clients.trace_result import trace_schema
from tests.support.hierarchy import start_hierarchy, wait_for
from tests.support.trace_chains import (
    DESK,
    info,
    mute_server,
    node,
    put_record,
    register_desk,
    register_site,
    run_idr,
    top_url,
)

FURNITURE_CHAIN = ("cq-top", "furniture", "timber", "materials", "inspection")


def trace_json(hierarchy: Hierarchy, identifier: str, *args: str) -> tuple[int, dict[str, Any]]:
    """Exit code and schema-checked JSON of `idr trace --json`."""
    done = run_idr(hierarchy.data_dir, "trace", identifier, "--json", *args)
    body: dict[str, Any] = json.loads(done.stdout)
    jsonschema.validate(body, trace_schema())
    return done.returncode, body


def secondary_names(body: dict[str, Any]) -> set[str]:
    return {n["name"] for n in body["nodes"] if n["records"]} - {"cq-top", "cd-backup"}


@pytest.fixture(scope="module")
def desk(running_hierarchy: Hierarchy) -> str:
    """The system-test desk, registered once on the module's hierarchy."""
    return register_desk(running_hierarchy)


def test_trace_follows_a_chain_across_nodes(running_hierarchy: Hierarchy, desk: str) -> None:
    done = run_idr(running_hierarchy.data_dir, "trace", desk)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in (
        "system-test desk",
        "88.169.1/SYS-PLANK-1",
        "88.169.2/SYS-LOG",
        "88.170.1/SYS-HINGE-1",
        "88.171.1/SYS-RPT-1",
        "Inspection",
        "GB 18584-2001",
        "@ timber",
        "@ materials",
        "@ inspection",
        "complete: 5 records from 4 nodes",
    ):
        assert expected in text, (expected, text)

    code, body = trace_json(running_hierarchy, desk)
    assert code == 0 and body["complete"]
    assert body["records"][0]["handle"] == DESK
    assert secondary_names(body) == {"furniture", "timber", "materials", "inspection"}

    timeline = run_idr(running_hierarchy.data_dir, "trace", desk, "--timeline")
    assert timeline.returncode == 0
    rows = timeline.stdout.split("\n", 1)[1]  # below the title, which names the desk
    order = [rows.index(h) for h in ("SYS-LOG", "SYS-HINGE-1", "SYS-PLANK-1", DESK, "SYS-RPT-1")]
    assert order == sorted(order), timeline.stdout


def test_trace_exit_codes_for_unknown_and_unreachable(running_hierarchy: Hierarchy) -> None:
    unknown = run_idr(running_hierarchy.data_dir, "trace", "88.168.1/SYS-NEVER")
    assert unknown.returncode == 1 and "not_found" in unknown.stderr
    invalid = run_idr(running_hierarchy.data_dir, "trace", "88.168.1/")
    assert invalid.returncode == 1 and "suffix" in invalid.stderr
    nowhere = run_idr(
        running_hierarchy.data_dir, "trace", DESK, "--top", "http://127.0.0.1:9", "--deadline", "2"
    )
    assert nowhere.returncode == 4, nowhere.stderr


def test_the_server_trace_matches_the_cli(running_hierarchy: Hierarchy, desk: str) -> None:
    resp = requests.get(f"{top_url(running_hierarchy)}/api/trace/{desk}", timeout=10)
    assert resp.status_code == 200
    jsonschema.validate(resp.json(), trace_schema())
    _, body = trace_json(running_hierarchy, desk)
    assert [r["handle"] for r in resp.json()["records"]] == [r["handle"] for r in body["records"]]
    # Both name the secondary node that holds each record.
    assert [r["node"] for r in resp.json()["records"]] == [r["node"] for r in body["records"]]


def test_the_demo_product_traces_from_raw_material_to_inspection_fast(
    running_hierarchy: Hierarchy,
) -> None:
    sample = info(running_hierarchy)["samples"]["product"]
    code, body = trace_json(running_hierarchy, sample)
    assert code == 0 and body["complete"], body["errors"]
    assert len(body["records"]) >= 15
    assert len(secondary_names(body)) >= 4
    stages = {r["stage"] for r in body["records"]}
    assert {"raw_material", "process", "inspection"} <= stages
    # The trace itself (as the command reports it) takes well under a second; the whole
    # command, Python start-up included, is timed too. Best of three runs, so that a
    # machine busy with other work does not decide.
    traced, runs = [], []
    for _ in range(3):
        began = time.monotonic()
        done = run_idr(running_hierarchy.data_dir, "trace", sample, "--json")
        runs.append(time.monotonic() - began)
        assert done.returncode == 0
        traced.append(json.loads(done.stdout)["stats"]["elapsedMs"])
    assert min(traced) < 1000, traced
    assert min(runs) < 3.0, runs


# --- failures ---------------------------------------------------------------------------


@pytest.fixture
def furniture_chain(tmp_path: Any) -> Iterator[Hierarchy]:
    """Only the nodes the desk needs, started for one test (it stops one of them)."""
    hierarchy = start_hierarchy(tmp_path, nodes=FURNITURE_CHAIN)
    try:
        register_desk(hierarchy)
        yield hierarchy
    finally:
        hierarchy.stop()


def test_a_stopped_node_gives_a_partial_trace_naming_what_is_missing(
    furniture_chain: Hierarchy,
) -> None:
    materials = furniture_chain.nodes["materials"]
    os.killpg(materials.process.pid, signal.SIGTERM)
    materials.process.wait(10)
    url = node(furniture_chain, "materials")["url"]
    wait_for(lambda: _refused(url), 10, "the materials node to stop answering")

    done = run_idr(furniture_chain.data_dir, "trace", DESK)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Missing (1)" in done.stdout
    assert "88.170.1/SYS-HINGE-1" in done.stderr and "unreachable" in done.stderr
    for present in ("88.169.1/SYS-PLANK-1", "88.169.2/SYS-LOG", "88.171.1/SYS-RPT-1"):
        assert present in done.stdout

    code, body = trace_json(furniture_chain, DESK)
    assert code == 3 and not body["complete"]
    assert len(body["records"]) == 4
    (missing,) = body["errors"]
    assert (missing["handle"], missing["reason"], missing["node"]) == (
        "88.170.1/SYS-HINGE-1",
        "unreachable",
        url,
    )


def _refused(url: str) -> bool:
    try:
        requests.get(f"{url}/_emulator/health", timeout=0.5)
    except requests.ConnectionError:
        return True
    return False


def test_a_node_that_never_answers_ends_by_the_deadline(furniture_chain: Hierarchy) -> None:
    # What a fast trace costs here (Python start-up included), to judge the slow one by.
    began = time.monotonic()
    assert run_idr(furniture_chain.data_dir, "trace", "88.169.1/SYS-PLANK-1").returncode == 0
    baseline = time.monotonic() - began
    with mute_server() as mute:
        register_site(furniture_chain, "88.199", mute)
        put_record(
            furniture_chain,
            "88.168.1/SYS-SOFA",
            ("name", "sofa"),
            ("TRACE.INPUT", "88.199.1/FOAM-1"),
            ("TRACE.INPUT", "88.169.1/SYS-PLANK-1"),
        )
        began = time.monotonic()
        # A request timeout far beyond the deadline, so that a trace that waited for it
        # (or failed over and waited again) stands out from a busy machine's slowness.
        done = run_idr(
            furniture_chain.data_dir,
            "trace",
            "88.168.1/SYS-SOFA",
            "--deadline",
            "1",
            "--timeout",
            "20",
        )
        took = time.monotonic() - began
        assert done.returncode == 3, (done.stdout, done.stderr)
        assert "88.199.1/FOAM-1 (deadline)" in done.stderr
        # The rest was traced meanwhile, behind the silent node's back.
        assert "88.169.2/SYS-LOG" in done.stdout
        # Ended by the deadline: not after the 20 s request timeout, not after failing
        # over to the backup top-level node and waiting there again. (A margin of 1.5 s
        # over the start-up baseline failed once in CI on a loaded 2-core box: 2.9 s.)
        assert took < baseline + 1.0 + 5.0, (took, baseline)

        code, body = trace_json(furniture_chain, "88.168.1/SYS-SOFA", "--deadline", "1")
        assert code == 3 and body["stats"]["elapsedMs"] < 1000 + 250
        assert [(e["handle"], e["reason"]) for e in body["errors"]] == [
            ("88.199.1/FOAM-1", "deadline")
        ]

        began = time.monotonic()
        resp = requests.get(
            f"{top_url(furniture_chain)}/api/trace/88.168.1/SYS-SOFA?deadline=1", timeout=10
        )
        assert time.monotonic() - began < 1.0 + 2.0
        body = resp.json()
        assert resp.status_code == 200 and body["complete"] is False
        assert body["stats"]["elapsedMs"] < 1000 + 250
        assert [(e["handle"], e["reason"]) for e in body["errors"]] == [
            ("88.199.1/FOAM-1", "deadline")
        ]
        assert "88.169.2/SYS-LOG" in [r["handle"] for r in body["records"]]
