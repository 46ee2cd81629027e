"""The pytest plugin as a user meets it: fixtures, options, fault and reset markers, seed files.

Each test writes a small project of its own and runs pytest on it in a fresh interpreter
(the plugin loads through its `pytest11` entry point, as in a user's project), with the
nodes in `wsgi` mode: no sockets, so these runs are quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

RUN_TIMEOUT = 120


def run_project(
    tmp_path: Path, tests: str, *args: str, files: dict[str, str] | None = None
) -> dict[str, str]:
    """Write test_project.py (and `files`) under tmp_path, run pytest there: outcome per test."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nidr_mode = wsgi\n", "utf-8")
    (tmp_path / "test_project.py").write_text(textwrap.dedent(tests), "utf-8")
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text, "utf-8")
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDR_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert report.exists(), result.stdout + result.stderr
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        message = " ".join((child.get("message") or "") + (child.text or "") for child in case)
        outcomes[case.get("name", "")] = f"{kinds[0] if kinds else 'passed'} {message}".strip()
    outcomes["_output"] = result.stdout + result.stderr
    return outcomes


def passed(outcomes: dict[str, str], *names: str) -> None:
    """Assert that the named tests passed, showing the run's output when one did not."""
    for name in names:
        assert outcomes.get(name, "missing").startswith("passed"), (
            f"{name}: {outcomes.get(name, 'missing')}\n{outcomes['_output']}"
        )


# One project for the default options: fixtures, fault markers and the reset marker.
DEFAULT_PROJECT = """
import pytest

ID = "88.168.1/WARD-2024-000123"
NEW = "88.168.1/ADDED-BY-A-TEST"
EVERY_HANDLE_FAILS = dict(kind="error", http_status=503, response_code=2, route="/api/handles/*")


def test_nodes(idr):
    assert set(idr.nodes) >= {"cq-top", "cd-backup", "furniture", "timber"}
    assert idr.top_level[0] == idr.url("cq-top")
    assert idr.credentials("88.168.1") == ("300:88.168.1/ADMIN", "demo-88.168.1-secret")
    assert idr.credentials("furniture") == ("300:88.168/ADMIN", "demo-furniture-admin")


def test_resolver(idr_resolver, idr):
    assert idr_resolver.resolve(idr.samples["product"]).served_by == idr.url("cq-top")


def test_same_hierarchy_for_the_session(idr_hierarchy, idr):
    assert idr is idr_hierarchy


@pytest.mark.idr_fault("*", **EVERY_HANDLE_FAILS)
def test_every_node_fails(idr):
    for name in idr.nodes:
        resp = idr.session.get(f"{idr.url(name)}/api/handles/{ID}", timeout=5)
        assert resp.status_code == 503, name


@pytest.mark.idr_fault(
    "furniture",
    {"kind": "error", "httpStatus": 500, "responseCode": 2},
    {"kind": "latency", "latencyMs": 1},
)
def test_rules_as_dicts(idr):
    assert [r["kind"] for r in idr.emulator("furniture").faults()] == ["error", "latency"]
    assert idr.emulator("timber").faults() == []


def test_faults_are_gone_afterwards(idr):
    for name in idr.nodes:
        assert idr.emulator(name).faults() == [], name
    assert idr.session.get(f"{idr.url('furniture')}/api/handles/{ID}", timeout=5).ok


@pytest.mark.idr_fault(kind="outage")
def test_a_marker_without_a_node(idr):
    pass


def test_adds_a_record(idr):
    resp = idr.session.put(
        f"{idr.url('furniture')}/api/handles/{NEW}",
        json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/"}]},
        auth=idr.credentials("88.168.1"),
        timeout=5,
    )
    assert resp.status_code == 201


def test_without_reset_it_is_still_there(idr):
    assert idr.session.get(f"{idr.url('furniture')}/api/handles/{NEW}", timeout=5).ok


@pytest.mark.idr_reset
def test_with_reset_it_is_gone(idr):
    base = f"{idr.url('furniture')}/api/handles"
    assert idr.session.get(f"{base}/{NEW}", timeout=5).status_code == 404
    assert idr.session.get(f"{base}/{ID}", timeout=5).ok
"""


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Outcomes of DEFAULT_PROJECT, run once for this module."""
    return run_project(tmp_path_factory.mktemp("plugin"), DEFAULT_PROJECT)


def test_fixtures_give_urls_credentials_and_a_ready_resolver(default_run: dict[str, str]) -> None:
    passed(default_run, "test_nodes", "test_resolver", "test_same_hierarchy_for_the_session")


def test_fault_markers_apply_to_one_test_only(default_run: dict[str, str]) -> None:
    passed(
        default_run,
        "test_every_node_fails",
        "test_rules_as_dicts",
        "test_faults_are_gone_afterwards",
    )


def test_a_fault_marker_must_name_a_node(default_run: dict[str, str]) -> None:
    outcome = default_run["test_a_marker_without_a_node"]
    assert outcome.startswith("error"), outcome
    assert "idr_fault needs the node first" in outcome


def test_reset_marker_restores_the_seed(default_run: dict[str, str]) -> None:
    passed(
        default_run,
        "test_adds_a_record",
        "test_without_reset_it_is_still_there",
        "test_with_reset_it_is_gone",
    )


SEED = {
    "records": [
        {
            "handle": "88.170.1/MY-HINGE-1",
            "values": [{"index": 2000, "type": "name", "data": "my hinge"}],
        },
        {
            "handle": "0.NA/88.168.77",
            "values": [{"index": 2, "type": "DESC", "data": "my enterprise"}],
        },
    ]
}


def test_seed_file_without_the_demo(tmp_path: Path) -> None:
    outcomes = run_project(
        tmp_path,
        """
        import pytest
        from idcore.errors import HandleNotFound

        def test_own_records(idr_resolver):
            assert idr_resolver.resolve("88.170.1/MY-HINGE-1").data("name") == "my hinge"
            assert idr_resolver.resolve("0.NA/88.168.77").data("DESC") == "my enterprise"

        def test_no_demo(idr, idr_resolver):
            assert idr.samples["product"] is None
            with pytest.raises(HandleNotFound):
                idr_resolver.resolve("88.168.1/WARD-2024-000123")
        """,
        "--idr-seed",
        "none",
        "--idr-seed-file",
        "seed.json",
        files={"seed.json": json.dumps(SEED)},
    )
    passed(outcomes, "test_own_records", "test_no_demo")


def test_a_bad_seed_file_names_the_record(tmp_path: Path) -> None:
    bad = {"records": [SEED["records"][0], {"handle": "88.999.1/NOWHERE", "values": []}]}
    outcomes = run_project(
        tmp_path,
        """
        def test_needs_the_hierarchy(idr):
            pass
        """,
        "--idr-seed",
        "none",
        "--idr-seed-file",
        "seed.json",
        files={"seed.json": json.dumps(bad)},
    )
    assert outcomes["test_needs_the_hierarchy"].startswith("error"), outcomes
    assert "88.999" in outcomes["test_needs_the_hierarchy"], outcomes


def test_a_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    outcomes = run_project(tmp_path, "def test_x(idr):\n    pass\n", "--idr-mode", "docker")
    assert outcomes["test_x"].startswith("error"), outcomes
    assert "choose one of inprocess, wsgi, processes" in outcomes["test_x"], outcomes
