"""Two processes of one secondary node share a Redis store: what one writes, the other serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.hierarchy import free_ports, start_hierarchy, wait_for

pytestmark = pytest.mark.redis

ENTERPRISE = "88.168.1"
AUTH = ("300%3A88.168.1/ADMIN", "demo-88.168.1-secret")
PRODUCT = "88.168.1/WARD-2024-000123"
TIMEOUT = 5.0


def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"second furniture process exited: {log.read_text('utf-8')[-2000:]}")
    try:
        return requests.get(f"{url}/_emulator/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def two_furniture_nodes(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str]]:
    """Base URLs of two `furniture` processes on different ports, both on one Redis."""
    hierarchy = start_hierarchy(
        tmp_path / "a", store="redis", redis_url=redis_url, nodes=["furniture"]
    )
    try:
        first = hierarchy.topology.node("furniture").url
        port = free_ports(1)[0]
        data_dir = tmp_path / "b"
        data_dir.mkdir()
        log = data_dir / "furniture-2.log"
        env = {
            **os.environ,
            "IDR_NODE": "furniture",
            "IDR_PORT": str(port),
            "IDR_STORE": "redis",
            "IDR_REDIS_URL": redis_url,
            "IDR_DATA_DIR": str(data_dir),
            # The same topology file as the first process: same seed mark, so no re-seed.
            "IDR_TOPOLOGY": str(hierarchy.data_dir / "topology.json"),
        }
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "secondary_nodes"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        second = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _ready(second, process, log), 20, "the second furniture process")
            yield first, second
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
    finally:
        hierarchy.stop()


def _url_value(body: dict[str, object]) -> str:
    values = body["values"]
    assert isinstance(values, list)
    return next(v["data"]["value"] for v in values if v["type"] == "URL")


def test_write_through_one_process_is_read_through_the_other(
    two_furniture_nodes: tuple[str, str],
) -> None:
    first, second = two_furniture_nodes
    assert first != second
    handle = f"{ENTERPRISE}/SHARED-{uuid.uuid4().hex[:8].upper()}"

    # Both serve the demo seed, written once into the shared store.
    for base in (first, second):
        resp = requests.get(f"{base}/api/handles/{PRODUCT}", timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
    # Asked before it exists, the second process says so (and must not remember it).
    missing = requests.get(f"{second}/api/handles/{handle}", timeout=TIMEOUT)
    assert (missing.status_code, missing.json()["responseCode"]) == (404, 100)

    body = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/v1"}]}
    created = requests.put(
        f"{first}/api/handles/{handle}?overwrite=false", json=body, auth=AUTH, timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text

    read = requests.get(f"{second}/api/handles/{handle}", timeout=TIMEOUT)
    assert read.status_code == 200, read.text
    assert read.json()["handle"] == handle
    assert _url_value(read.json()) == "https://example.com/v1"

    # The second process sees the handle exists: creating it again there conflicts.
    again = requests.put(
        f"{second}/api/handles/{handle}?overwrite=false", json=body, auth=AUTH, timeout=TIMEOUT
    )
    assert (again.status_code, again.json()["responseCode"]) == (409, 101)

    # A change through the second is read through the first.
    change = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/v2"}]}
    modified = requests.put(
        f"{second}/api/handles/{handle}?index=1", json=change, auth=AUTH, timeout=TIMEOUT
    )
    assert modified.status_code == 200, modified.text
    assert _url_value(requests.get(f"{first}/api/handles/{handle}", timeout=TIMEOUT).json()) == (
        "https://example.com/v2"
    )

    # A listing on the other process includes it; a delete through one is gone on the other.
    listing = requests.get(
        f"{second}/api/handles", params={"prefix": ENTERPRISE, "pageSize": 1000}, timeout=TIMEOUT
    )
    assert listing.status_code == 200, listing.text
    assert handle in listing.json()["handles"]
    deleted = requests.delete(f"{first}/api/handles/{handle}", auth=AUTH, timeout=TIMEOUT)
    assert deleted.status_code == 200, deleted.text
    gone = requests.get(f"{second}/api/handles/{handle}", timeout=TIMEOUT)
    assert (gone.status_code, gone.json()["responseCode"]) == (404, 100)
