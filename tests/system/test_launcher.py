"""`idr up` as a user runs it: a real subprocess that starts every node, then stops them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from idcore.topology import Topology
from tests.support.hierarchy import (
    is_alive,
    node_pids,
    port_is_free,
    topology_on_free_ports,
    wait_for,
)

IDR = Path(sys.executable).with_name("idr")
UP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CMD_TIMEOUT = 20.0
DEMO_ENTERPRISE = "88.168.1"


@dataclass
class Up:
    """A running `idr up` subprocess and what it announced."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    topology: Topology
    log: Path
    ready_after: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def idr(self, *args: str, columns: int | None = 200) -> subprocess.CompletedProcess[str]:
        """Run another `idr` command against this hierarchy, as a user in a second shell would."""
        return run_idr("--data-dir", str(self.data_dir), *args, columns=columns)

    def output(self) -> str:
        """What `idr up` printed so far."""
        return self.log.read_text("utf-8", "replace")


def run_idr(*args: str, columns: int | None = 200) -> subprocess.CompletedProcess[str]:
    """Run `.venv/bin/idr` without colour (wide unless `columns` is None); capture its output."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    for name in ("IDR_DATA_DIR", "IDR_TOP", "COLUMNS", "LINES"):
        env.pop(name, None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [str(IDR), *args],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _all_ready(up: Up) -> bool:
    if up.process.poll() is not None:
        raise AssertionError(f"idr up exited with {up.process.returncode}:\n{up.output()}")
    path = up.data_dir / "hierarchy.json"
    if not path.exists():
        return False
    try:
        info = json.loads(path.read_text("utf-8"))
    except ValueError:  # caught while being written
        return False
    for node in info["nodes"]:
        try:
            if requests.get(f"{node['url']}/_emulator/ready", timeout=1).status_code != 200:
                return False
        except requests.RequestException:
            return False
    up.info = info
    return True


def start_up(tmp_path: Path) -> Up:
    """`idr --data-dir <tmp> up --topology <free ports>`; return once every node is ready."""
    topology = topology_on_free_ports()
    topo_file = tmp_path / "topology.json"
    topo_file.write_text(topology.dumps(), "utf-8")
    data_dir = (tmp_path / "data").resolve()
    log = tmp_path / "idr-up.log"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("IDR_DATA_DIR", None)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(IDR), "--data-dir", str(data_dir), "up", "--topology", str(topo_file)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    up = Up(process, data_dir, topology, log)
    try:
        up.ready_after = wait_for(lambda: _all_ready(up), UP_TIMEOUT, "idr up to become ready")
    except BaseException:
        stop_up(up, signal.SIGTERM)
        raise
    return up


def stop_up(up: Up, sig: int) -> float:
    """Send `sig` to `idr up` and wait for it to exit; seconds it took."""
    began = time.monotonic()
    if up.process.poll() is None:
        up.process.send_signal(sig)
    try:
        up.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # Leave nothing behind even when the test fails.
        up.process.kill()
        up.process.wait(5)
        for pid in node_pids(up.data_dir):
            os.kill(pid, signal.SIGKILL)
        raise
    return time.monotonic() - began


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `idr up` for the read-only tests of this module."""
    running = start_up(tmp_path_factory.mktemp("idr-up"))
    print(f"\nidr up ready after {running.ready_after:.2f}s")
    try:
        yield running
    finally:
        stop_up(running, signal.SIGTERM)


def _node(info: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in info["nodes"] if n["name"] == name)


# --- startup and hierarchy.json ------------------------------------------------------------


def test_up_becomes_ready_quickly_and_says_so(up: Up, record_property: Any) -> None:
    record_property("idr_up_ready_seconds", round(up.ready_after, 2))
    assert up.ready_after < 15, f"idr up took {up.ready_after:.1f}s to become ready"
    printed = up.output()
    assert "ready in" in printed
    # Every node is listed with the URL it really listens on, and a command to try is shown.
    for spec in up.topology.nodes:
        assert spec.url in printed
    assert f"idr resolve {up.info['samples']['product']}" in printed


def test_hierarchy_json_has_the_documented_shape(up: Up) -> None:
    info = json.loads((up.data_dir / "hierarchy.json").read_text("utf-8"))
    assert {"nodes", "enterprises", "samples"} <= info.keys()

    # nodes: one per topology node, in topology order, at the ports idr up was given.
    assert [n["name"] for n in info["nodes"]] == [s.name for s in up.topology.nodes]
    for node, spec in zip(info["nodes"], up.topology.nodes, strict=True):
        assert {"name", "role", "url", "prefix"} <= node.keys()
        assert (node["role"], node["url"], node["prefix"]) == (spec.role, spec.url, spec.prefix)
    roles = [n["role"] for n in info["nodes"]]
    assert roles.count("primary") == 1 and roles.count("backup") == 1

    # enterprises: each on a secondary node, its prefix derived from that node's prefix.
    prefixes = {n["name"]: n["prefix"] for n in info["nodes"] if n["role"] == "secondary"}
    assert info["enterprises"], "the demo seeds enterprises"
    for ent in info["enterprises"]:
        assert {"prefix", "node", "admin", "secret"} <= ent.keys()
        assert ent["prefix"].startswith(prefixes[ent["node"]] + ".")
        assert ent["admin"] == f"300:{ent['prefix']}/ADMIN"
        assert ent["secret"]
    assert {e["node"] for e in info["enterprises"]} == set(prefixes)
    demo = next(e for e in info["enterprises"] if e["prefix"] == DEMO_ENTERPRISE)
    assert (demo["node"], demo["secret"]) == ("furniture", "demo-88.168.1-secret")

    # samples: a product on the furniture node's prefix, within the listed identifiers.
    samples = info["samples"]
    assert {"product", "identifiers"} <= samples.keys()
    product = samples["product"]
    assert isinstance(product, str) and product.startswith("88.168.")
    assert product in samples["identifiers"]
    homed = {i.split("/", 1)[0].rsplit(".", 1)[0] for i in samples["identifiers"]}
    assert homed == set(prefixes.values()), "every secondary node has sample identifiers"


# --- idr resolve / status against the running hierarchy -----------------------------------


def test_resolve_prints_the_record(up: Up) -> None:
    product = up.info["samples"]["product"]
    shown = up.idr("resolve", product)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(up.idr("resolve", "--json", product).stdout)
    assert product in shown.stdout
    for value in record["values"]:
        assert value["type"] in shown.stdout
        assert str(value["index"]) in shown.stdout
    model = next(v for v in record["values"] if v["type"] == "model")
    assert model["data"]["value"] in shown.stdout


def test_resolve_json_prints_handle_json(up: Up) -> None:
    product = up.info["samples"]["product"]
    result = up.idr("resolve", "--json", product)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["responseCode"] == 1
    assert body["handle"] == product
    types = {v["type"]: v for v in body["values"]}
    assert {"URL", "HS_ADMIN", "name", "model", "manufacturer", "produced_at"} <= types.keys()
    assert types["URL"]["data"] == {"format": "string", "value": types["URL"]["data"]["value"]}
    assert types["URL"]["data"]["value"].endswith(f"/t/{product}")
    assert types["HS_ADMIN"]["data"]["format"] == "admin"
    assert all(isinstance(v["index"], int) and "ttl" in v for v in body["values"])


@pytest.mark.parametrize(
    "identifier",
    [
        f"{DEMO_ENTERPRISE}/NO-SUCH-PRODUCT",
        # Longer than the 80 columns rich assumes when stderr is not a terminal.
        f"{DEMO_ENTERPRISE}/WARD-2024-NO-SUCH-PRODUCT-WITH-A-RATHER-LONG-SERIAL-000000000001",
    ],
    ids=["short", "long"],
)
def test_resolve_unknown_identifier_fails_with_one_line_reason(up: Up, identifier: str) -> None:
    # As a script sees it: stderr piped, no COLUMNS.
    result = up.idr("resolve", identifier, columns=None)
    assert result.returncode != 0
    assert result.stdout.strip() == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not found" in lines[0]
    assert identifier in lines[0]


def test_status_json_reports_every_node_ready(up: Up) -> None:
    result = up.idr("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert [n["name"] for n in status["nodes"]] == [s.name for s in up.topology.nodes]
    assert all(n["ready"] is True for n in status["nodes"]), status["nodes"]


def test_sample_answers_the_same_via_top_level_and_secondary(up: Up) -> None:
    product = up.info["samples"]["product"]
    top = _node(up.info, "cq-top")["url"]
    furniture = _node(up.info, "furniture")["url"]
    via_top = requests.get(f"{top}/api/handles/{product}", timeout=5)
    direct = requests.get(f"{furniture}/api/handles/{product}", timeout=5)
    assert (via_top.status_code, direct.status_code) == (200, 200)
    assert via_top.json()["handle"] == direct.json()["handle"] == product
    assert via_top.json()["values"] == direct.json()["values"]
    assert via_top.json()["values"], "the sample has values"


# --- stopping ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_every_node_and_frees_every_port(
    tmp_path: Path, sig: int, record_property: Any
) -> None:
    running = start_up(tmp_path)
    pids = node_pids(running.data_dir)
    # A gunicorn master and at least one worker per node.
    assert len(pids) >= 2 * len(running.topology.nodes), pids

    took = stop_up(running, sig)
    record_property("idr_up_stop_seconds", round(took, 2))
    print(f"\nidr up ready after {running.ready_after:.2f}s, stopped {took:.2f}s after signal")
    assert running.process.returncode == 0
    # Graceful: well before the launcher's 5 s escalation to SIGKILL.
    assert took < 4.0, f"idr up took {took:.1f}s to stop"
    assert "stopped every node" in running.output()
    assert [p for p in pids if is_alive(p)] == [], "node processes outlived idr up"
    assert node_pids(running.data_dir) == []
    busy = [s.port for s in running.topology.nodes if not port_is_free(s.port)]
    assert busy == [], f"ports still taken after idr up exited: {busy}"
    assert not (running.data_dir / "hierarchy.json").exists(), "hierarchy.json describes nothing"
