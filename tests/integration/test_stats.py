"""Statistics, Prometheus metrics and access logs of the nodes, apps in-process (no sockets)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from clients.harness import EmulatedHierarchy
from idcore.logs import ACCESS_LOGGER
from idcore.stats_schema import STATS_SCHEMA

PRODUCT = "88.168.1/WARD-2024-000123"


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedHierarchy]:
    """The default hierarchy with demo data, every app in this process behind WSGI adapters."""
    with EmulatedHierarchy("wsgi", tmp_path_factory.mktemp("stats")) as running:
        yield running


def stats(h: EmulatedHierarchy, node: str, scope: str = "node") -> dict[str, Any]:
    resp = h.session.get(f"{h.url(node)}/api/stats", params={"scope": scope}, timeout=5)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def prefix_row(body: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(
        (r for r in body["prefixes"] if r["prefix"] == prefix),
        {"prefix": prefix, "registrations": 0, "resolutions": 0},
    )


def metric(h: EmulatedHierarchy, at: str, name: str, **labels: str) -> float:
    """The sum of a metric's series that carry `labels`, in node `at`'s /metrics text."""
    resp = h.session.get(f"{h.url(at)}/metrics", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in resp.text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def put(h: EmulatedHierarchy, handle: str, name: str) -> int:
    resp = h.session.put(
        f"{h.url('furniture')}/api/handles/{handle}",
        json={"values": [{"index": 2000, "type": "name", "data": name}]},
        auth=h.credentials("88.168.1"),
        timeout=5,
    )
    return resp.status_code


def test_resolutions_count_per_node_and_prefix(hierarchy: EmulatedHierarchy) -> None:
    top_before = stats(hierarchy, "cq-top")
    node_before = stats(hierarchy, "furniture")
    for _ in range(4):
        # auth=true bypasses the top-level cache, so each one reaches the furniture node too.
        resp = hierarchy.session.get(
            f"{hierarchy.url('cq-top')}/api/handles/{PRODUCT}", params={"auth": "true"}, timeout=5
        )
        assert resp.status_code == 200
    top, node = stats(hierarchy, "cq-top"), stats(hierarchy, "furniture")
    assert top["resolutions"] - top_before["resolutions"] == 4
    assert node["resolutions"] - node_before["resolutions"] == 4
    assert (
        prefix_row(node, "88.168.1")["resolutions"]
        - prefix_row(node_before, "88.168.1")["resolutions"]
        == 4
    )
    assert node["resolutions_per_second"] > 0
    assert prefix_row(node, "88.168.1")["resolutions_per_second"] > 0
    assert node["registrations"] == node_before["registrations"]


def test_results_are_told_apart(hierarchy: EmulatedHierarchy) -> None:
    before = stats(hierarchy, "timber")["resolutions_by_result"]
    url = f"{hierarchy.url('timber')}/api/handles"
    assert hierarchy.session.get(f"{url}/88.169.1/NO-SUCH-LOT", timeout=5).status_code == 404
    assert hierarchy.session.get(f"{url}/88.169.1/NO-SUCH-LOT-2", timeout=5).status_code == 404
    assert hierarchy.session.get(f"{url}/not a handle", timeout=5).status_code == 400
    after = stats(hierarchy, "timber")
    assert after["resolutions_by_result"].get("not_found", 0) - before.get("not_found", 0) == 2
    assert after["resolutions_by_result"].get("error", 0) - before.get("error", 0) == 1
    assert prefix_row(after, "(invalid)")["resolutions"] >= 1


def test_registrations_count_creations_only(hierarchy: EmulatedHierarchy) -> None:
    before = stats(hierarchy, "furniture")
    metric_before = metric(
        hierarchy, "furniture", "idr_registrations_total", prefix="88.168.1", node="furniture"
    )
    assert put(hierarchy, "88.168.1/STATS-DESK-1", "desk") == 201
    assert put(hierarchy, "88.168.1/STATS-DESK-2", "desk") == 201
    assert put(hierarchy, "88.168.1/STATS-DESK-1", "desk, renamed") == 200  # an update
    after = stats(hierarchy, "furniture")
    assert after["registrations"] - before["registrations"] == 2
    assert after["registrations_per_second"] > 0
    assert (
        prefix_row(after, "88.168.1")["registrations"]
        - prefix_row(before, "88.168.1")["registrations"]
        == 2
    )
    assert (
        metric(hierarchy, "furniture", "idr_registrations_total", prefix="88.168.1") - metric_before
        == 2
    )


def test_batch_registrations_count_each_created_item(hierarchy: EmulatedHierarchy) -> None:
    before = stats(hierarchy, "furniture")["registrations"]
    assert put(hierarchy, "88.168.1/STATS-BATCH-0", "exists already") == 201
    items = [
        {
            "handle": f"88.168.1/STATS-BATCH-{n}",
            "values": [{"index": 1, "type": "URL", "data": "x"}],
        }
        for n in range(5)
    ]
    resp = hierarchy.session.post(
        f"{hierarchy.url('furniture')}/api/batch/handles",
        json={"handles": items},
        auth=hierarchy.credentials("88.168.1"),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["succeeded"] == 4  # item 0 exists and overwrite is off
    assert stats(hierarchy, "furniture")["registrations"] - before == 1 + 4


def test_metrics_agree_with_stats(hierarchy: EmulatedHierarchy) -> None:
    body = stats(hierarchy, "furniture")
    exposed = metric(hierarchy, "furniture", "idr_resolutions_total", node="furniture")
    assert exposed == body["resolutions"]
    assert metric(hierarchy, "furniture", "idr_http_requests_total", route="/api/stats") >= 1
    assert metric(hierarchy, "furniture", "idr_http_request_duration_seconds_count") >= 1


def test_the_top_level_node_aggregates_the_hierarchy(hierarchy: EmulatedHierarchy) -> None:
    body = stats(hierarchy, "cq-top", scope="hierarchy")
    assert body["scope"] == "hierarchy"
    names = [n["node"] for n in body["nodes"]]
    assert names[:2] == ["cq-top", "cd-backup"]
    assert set(names) == set(hierarchy.nodes)
    assert all(n["up"] for n in body["nodes"])
    for key in ("registrations", "resolutions", "records"):
        assert body["totals"][key] == sum(n[key] for n in body["nodes"]), key
    furniture = next(n for n in body["nodes"] if n["node"] == "furniture")
    assert {"88.168.1", "88.168.2"} <= set(furniture["hosted_prefixes"])
    merged = prefix_row(body, "88.168.1")
    assert merged["resolutions"] == sum(
        prefix_row(n, "88.168.1")["resolutions"] for n in body["nodes"]
    )
    assert body["totals"]["nodes"] == body["totals"]["up"] == len(hierarchy.nodes)
    backup = body["nodes"][1]
    assert backup["replication"]["node"] == "cd-backup", "the backup's /_emulator/status"
    assert "seconds_behind" in backup["replication"]


def test_a_node_that_does_not_answer_is_shown_down(hierarchy: EmulatedHierarchy) -> None:
    hierarchy.add_faults("timber", [{"kind": "outage"}])
    try:
        body = stats(hierarchy, "cq-top", scope="hierarchy")
    finally:
        hierarchy.clear_faults()
    timber = next(n for n in body["nodes"] if n["node"] == "timber")
    assert timber["up"] is False and timber["error"]
    assert timber["prefix"] == "88.169"
    assert body["totals"]["up"] == len(hierarchy.nodes) - 1


def test_scope_is_checked(hierarchy: EmulatedHierarchy) -> None:
    assert stats(hierarchy, "cq-top", scope="node")["scope"] == "node"
    assert stats(hierarchy, "furniture", scope="hierarchy")["scope"] == "node"
    resp = hierarchy.session.get(
        f"{hierarchy.url('cq-top')}/api/stats", params={"scope": "world"}, timeout=5
    )
    assert resp.status_code == 400
    assert "scope=node or scope=hierarchy" in resp.json()["message"]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access_lines(hierarchy: EmulatedHierarchy) -> Iterator[list[str]]:
    """Access-log lines of the furniture node while the test runs (logging switched on)."""
    app = hierarchy.apps[hierarchy.url("furniture")]
    settings = app.extensions["idr.settings"]
    handler = _Lines()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    settings.access_log = True
    try:
        yield handler.lines
    finally:
        settings.access_log = False
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_one_json_line_per_request_without_secrets(
    hierarchy: EmulatedHierarchy, access_lines: list[str]
) -> None:
    _user, secret = hierarchy.credentials("88.168.1")
    assert put(hierarchy, "88.168.1/LOGGED-1", "logged") == 201
    hierarchy.session.get(f"{hierarchy.url('furniture')}/api/handles/88.168.1/NOPE", timeout=5)
    assert len(access_lines) == 2
    written, missing = (json.loads(line) for line in access_lines)
    assert written["node"] == "furniture"
    assert written["identifier"] == "88.168.1/LOGGED-1"
    assert (written["method"], written["status"], written["responseCode"]) == ("PUT", 201, 1)
    assert missing["responseCode"] == 100 and missing["status"] == 404
    for entry in (written, missing):
        assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
        assert "client" in entry and entry["ts"].endswith("Z")
    for line in access_lines:
        assert secret not in line
        assert "Basic" not in line and "uthorization" not in line


def test_answers_follow_the_documented_schema(hierarchy: EmulatedHierarchy) -> None:
    hierarchy.add_faults("auto", [{"kind": "outage"}])  # a node that is down, too
    try:
        answers = [
            stats(hierarchy, "furniture"),
            stats(hierarchy, "cq-top", scope="node"),
            stats(hierarchy, "cq-top", scope="hierarchy"),
        ]
    finally:
        hierarchy.clear_faults()
    for body in answers:
        jsonschema.validate(body, STATS_SCHEMA)
    documented = hierarchy.session.get(f"{hierarchy.url('cq-top')}/openapi.json", timeout=5)
    assert documented.json()["components"]["schemas"]["Stats"] == STATS_SCHEMA
