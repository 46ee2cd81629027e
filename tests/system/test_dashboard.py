"""The dashboard and the counters of real node processes (two gunicorn workers each).

Counters must add up across a node's workers, and a person looking at the top-level
node's `/` in a browser must see the hierarchy, each node's health and counters that
move when identifiers are resolved and registered.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from clients.launcher import Hierarchy
from tests.support.headless_chromium import dump_dom, screenshot
from tests.support.hierarchy import START_TIMEOUT, topology_on_free_ports, wait_for

PRODUCT = "88.168.1/WARD-2024-000123"
WORKERS = 2


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    """The default hierarchy as processes, two workers per node, with a stale metrics file."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    stale = data_dir / "metrics" / "furniture" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from a previous run")
    running = Hierarchy(
        topology=topology_on_free_ports(),
        data_dir=data_dir,
        extra_env={"IDR_WORKERS": str(WORKERS)},
    )
    running.start(timeout=START_TIMEOUT)
    try:
        yield running
    finally:
        running.stop()


def url(h: Hierarchy, node: str) -> str:
    return h.topology.node(node).url


def node_stats(h: Hierarchy, node: str) -> dict[str, object]:
    body: dict[str, object] = requests.get(
        f"{url(h, node)}/api/stats", params={"scope": "node"}, timeout=5
    ).json()
    return body


def test_counts_add_up_across_workers(hierarchy: Hierarchy) -> None:
    files = hierarchy.data_dir / "metrics" / "furniture"
    assert not (files / "counter_1.db").exists(), "the node empties its metrics dir at start"
    before = node_stats(hierarchy, "furniture")["resolutions"]
    assert isinstance(before, int)
    target = f"{url(hierarchy, 'furniture')}/api/handles/{PRODUCT}"
    failures: list[str] = []

    def resolve_some() -> None:
        for _ in range(10):
            # A new connection each time, so both workers get their share.
            resp = requests.get(target, headers={"Connection": "close"}, timeout=5)
            if resp.status_code != 200:
                failures.append(resp.text)

    threads = [threading.Thread(target=resolve_some) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert node_stats(hierarchy, "furniture")["resolutions"] == before + 60
    counter_files = sorted(p.name for p in files.glob("counter_*.db"))
    assert len(counter_files) == WORKERS, f"both workers counted: {counter_files}"
    text = requests.get(f"{url(hierarchy, 'furniture')}/metrics", timeout=5).text
    series = re.search(
        r'^idr_resolutions_total\{[^}]*prefix="88\.168\.1"[^}]*result="ok"[^}]*\} (\S+)$',
        text,
        re.M,
    )
    assert series and float(series.group(1)) >= 60, text[:2000]


def test_access_log_has_one_line_per_request(hierarchy: Hierarchy) -> None:
    requests.get(f"{url(hierarchy, 'timber')}/api/handles/88.169.1/LOG-PROBE", timeout=5)
    log = hierarchy.data_dir / "logs" / "timber.log"
    # Lines are written by a thread of the worker, at most FLUSH_SECONDS after the request.
    wait_for(lambda: "LOG-PROBE" in log.read_text("utf-8"), 5, "the access line")
    probe = [line for line in log.read_text("utf-8").splitlines() if "LOG-PROBE" in line]
    assert len(probe) == 1
    assert '"node":"timber"' in probe[0] and '"responseCode":100' in probe[0]
    assert '"status":404' in probe[0] and '"identifier":"88.169.1/LOG-PROBE"' in probe[0]


def figure(dom: str, ident: str) -> int:
    found = re.search(rf'id="{ident}">([^<]*)<', dom)
    assert found, f"no #{ident} in the page"
    return int(found.group(1).replace(",", ""))


def test_dashboard_shows_the_hierarchy_and_live_counters(
    hierarchy: Hierarchy, tmp_path: Path
) -> None:
    top = url(hierarchy, "cq-top")
    first = dump_dom(f"{top}/")
    for spec in hierarchy.topology.nodes:
        assert f'data-node="{spec.name}"' in first, spec.name
    assert first.count('class="node node-up"') == len(hierarchy.topology.nodes)
    assert "88.168.1" in first and "88.173.2" in first, "enterprise prefixes under their nodes"
    assert re.search(r'class="replication-lag">lag \d+\.\d s', first), "the backup's lag"
    resolutions, registrations = (
        figure(first, "total-resolutions"),
        figure(first, "total-registrations"),
    )

    for n in range(3):
        assert requests.get(f"{top}/api/handles/{PRODUCT}", timeout=5).status_code == 200
        resp = requests.put(
            f"{url(hierarchy, 'furniture')}/api/handles/88.168.1/DASH-{n}",
            json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/"}]},
            auth=("300:88.168.1/ADMIN", "demo-88.168.1-secret"),
            timeout=5,
        )
        assert resp.status_code == 201, resp.text

    second = dump_dom(f"{top}/")
    assert figure(second, "total-resolutions") >= resolutions + 3
    assert figure(second, "total-registrations") == registrations + 3
    row = re.search(r'<tr data-node="furniture">(.*?)</tr>', second)
    assert row and re.search(r'class="num registrations">3<', row.group(1)), row

    shot = screenshot(f"{top}/?q={PRODUCT}&mode=trace", tmp_path / "dashboard.png")
    assert shot.stat().st_size > 20_000


def test_the_box_resolves_and_traces_what_is_typed_or_scanned(hierarchy: Hierarchy) -> None:
    top = url(hierarchy, "cq-top")
    resolved = dump_dom(f"{top}/?q=hdl:{PRODUCT}&mode=resolve")
    table = re.search(r'<table id="record-table">(.*?)</table>', resolved, re.S)
    assert table and "WARD" in resolved and "URL" in table.group(1)
    traced = dump_dom(f"{top}/?q={top}/t/{PRODUCT}&mode=trace")
    rows = re.search(r'<table id="trace-table">(.*?)</table>', traced, re.S)
    assert rows, traced[-3000:]
    assert rows.group(1).count("<tr>") >= 1 + 15
    for node in ("furniture", "timber", "materials", "inspection"):
        assert f"<td>{node}</td>" in rows.group(1), node
    unknown = dump_dom(f"{top}/?q=88.168.1/NOT-THERE&mode=resolve")
    assert 'class="error"' in unknown and "responseCode 100" in unknown


def test_a_node_that_stops_answering_turns_red(hierarchy: Hierarchy) -> None:
    # Frozen, not killed: the node keeps its port but answers nothing, the harder case.
    timber = hierarchy.nodes["timber"].process
    os.killpg(timber.pid, signal.SIGSTOP)
    try:
        dom = dump_dom(f"{url(hierarchy, 'cq-top')}/")
    finally:
        os.killpg(timber.pid, signal.SIGCONT)
    assert '<g class="node node-down" data-node="timber">' in dom, dom[-6000:]
    assert dom.count('class="node node-up"') == len(hierarchy.topology.nodes) - 1
    assert re.search(r'<tr data-node="timber">.*?class="down">down<', dom)
