"""Chaos: SIGKILL Chongqing under load; Chengdu answers every read and holds every prefix.

Real processes (the launcher on free ports, SQLite): eight readers resolve the demo
identifiers through `Resolver([chongqing, chengdu])` without caching (`fresh`), a
registrar keeps registering prefixes on Chongqing, a monitor samples Chengdu's lag. Then
Chongqing is SIGKILLed mid-load, the readers go on against Chengdu, Chongqing restarts,
takes more prefixes, and Chengdu's lag must come back to zero. Bounded: <= 60 s.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from clients.launcher import Hierarchy
from clients.resolver import Resolver
from tests.support.hierarchy import start_hierarchy, wait_for
from tests.system.test_launcher import run_idr

NODES = ["cq-top", "cd-backup", "furniture", "timber"]
READERS = 8
LOAD_BEFORE_KILL = 3.0
LOAD_AFTER_KILL = 3.0
CATCH_UP_LIMIT = 15.0
TOP_ADMIN = "Basic " + base64.b64encode(b"300%3A0.NA/88:demo-cq-top-admin").decode()

pytestmark = pytest.mark.timeout(60)


@dataclass
class Tally:
    """What the readers, the registrar and the monitor saw."""

    reads: int = 0
    reads_after_kill: int = 0
    served_by: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # prefix -> X-Idr-Replicated
    max_seq_behind: int = 0
    max_seconds_behind: float = 0.0
    samples: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _status(session: requests.Session, url: str) -> dict[str, Any]:
    body: dict[str, Any] = session.get(f"{url}/_emulator/status", timeout=2).json()
    return body


def _in_sync(session: requests.Session, primary: str, backup: str) -> bool:
    try:
        top, bak = _status(session, primary), _status(session, backup)
    except (requests.RequestException, ValueError):
        return False
    return (
        bak["primary"]["reachable"] is True
        and bak["seq_behind"] == 0
        and bak["last_seq_applied"] == top["last_seq"]
        and any(f["connected"] for f in top["followers"])
    )


def _register(session: requests.Session, url: str, prefix: str) -> requests.Response:
    body = {"values": [{"index": 2, "type": "DESC", "data": f"chaos prefix {prefix} (demo)"}]}
    return session.put(
        f"{url}/api/handles/0.NA/{prefix}",
        data=json.dumps(body),
        headers={"Authorization": TOP_ADMIN, "Content-Type": "application/json"},
        timeout=5,
    )


def test_sigkill_of_chongqing_under_load(tmp_path: Path) -> None:
    began = time.monotonic()
    hierarchy: Hierarchy = start_hierarchy(tmp_path, nodes=NODES)
    try:
        _chaos(hierarchy, began)
    finally:
        hierarchy.stop()


def _chaos(hierarchy: Hierarchy, began: float) -> None:
    cq, cd = hierarchy.nodes["cq-top"].url, hierarchy.nodes["cd-backup"].url
    identifiers: list[str] = hierarchy.describe()["samples"]["identifiers"]
    assert len(identifiers) >= 8
    control = requests.Session()
    wait_for(lambda: _in_sync(control, cq, cd), 15, "Chengdu to follow Chongqing")
    # The follower runs in the gunicorn master (the launched process), not in a worker.
    assert _status(control, cd)["follower_pid"] == hierarchy.nodes["cd-backup"].process.pid

    tally = Tally()
    stop = threading.Event()
    killed = threading.Event()

    def reader(n: int) -> None:
        with Resolver([cq, cd], timeout=2.0) as resolver:
            k = n
            while not stop.is_set():
                wanted = identifiers[k % len(identifiers)]
                k += 1
                try:
                    record = resolver.resolve(wanted, fresh=True)
                    ok = record.handle.upper() == wanted.upper() and bool(record.values)
                    problem = None if ok else f"{wanted}: wrong answer {record.to_json()}"
                except Exception as exc:  # every failure is reported below
                    problem = f"{wanted}: {type(exc).__name__}: {exc}"
                    record = None
                with tally.lock:
                    tally.reads += 1
                    if killed.is_set():
                        tally.reads_after_kill += 1
                    if problem:
                        tally.failures.append(problem)
                    elif record is not None:
                        server = "cq-top" if record.served_by == cq else "cd-backup"
                        tally.served_by[server] = tally.served_by.get(server, 0) + 1

    def registrar() -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            prefix = f"88.{7000 + n}"
            n += 1
            try:
                resp = _register(session, cq, prefix)
            except requests.RequestException:
                return  # Chongqing is gone: nothing after this was acknowledged
            if resp.status_code in (200, 201):
                with tally.lock:
                    tally.acked[prefix] = resp.headers.get("X-Idr-Replicated", "")
            time.sleep(0.02)

    def monitor() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                status = _status(session, cd)
            except (requests.RequestException, ValueError):
                time.sleep(0.1)
                continue
            with tally.lock:
                tally.samples += 1
                tally.max_seq_behind = max(tally.max_seq_behind, int(status["seq_behind"]))
                if status["seconds_behind"] is not None:
                    tally.max_seconds_behind = max(
                        tally.max_seconds_behind, float(status["seconds_behind"])
                    )
            time.sleep(0.1)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    writer = threading.Thread(target=registrar)
    watcher = threading.Thread(target=monitor)
    for t in [*threads, writer, watcher]:
        t.start()
    try:
        time.sleep(LOAD_BEFORE_KILL)
        hierarchy.kill("cq-top")  # SIGKILL to the node's process group, mid-load
        killed.set()
        killed_at = time.monotonic()
        writer.join(10)
        assert not writer.is_alive()
        acked_before_kill = dict(tally.acked)
        time.sleep(LOAD_AFTER_KILL)

        # Every prefix Chongqing acknowledged before it died is on Chengdu.
        missing = [
            p
            for p in acked_before_kill
            if control.get(f"{cd}/api/handles/{p}", timeout=5).status_code != 200
        ]
        assert acked_before_kill and not missing, missing
        # The consumer page and the trace are served by Chengdu alone, too.
        product = hierarchy.describe()["samples"]["product"]
        page = control.get(f"{cd}/t/{product}", timeout=20)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        trace = control.get(f"{cd}/api/trace/{product}", timeout=20)
        assert trace.status_code == 200 and trace.json()["root"] == product
        outage_reads = tally.reads_after_kill
        status = _status(control, cd)
        assert status["role"] == "backup" and status["primary"]["reachable"] is False

        # Chongqing comes back: still the primary, Chengdu follows it again.
        hierarchy.restart("cq-top", timeout=20)
        restarted_at = time.monotonic()
        assert _status(control, cq)["role"] == "primary"
        later = [f"88.{8000 + n}" for n in range(5)]
        for prefix in later:
            assert _register(control, cq, prefix).status_code == 201
        catch_up = wait_for(lambda: _in_sync(control, cq, cd), CATCH_UP_LIMIT, "the catch-up")
        caught_up_after = time.monotonic() - restarted_at
        for prefix in later:
            assert control.get(f"{cd}/api/handles/{prefix}", timeout=5).status_code == 200
        final = _status(control, cd)
        assert (final["seq_behind"], final["seconds_behind"]) == (0, 0.0)
    finally:
        stop.set()
        for t in [*threads, writer, watcher]:
            t.join(15)

    summary = {
        "reads": tally.reads,
        "reads_during_outage": outage_reads,
        "failed_reads": len(tally.failures),
        "served_by": tally.served_by,
        "prefixes_acked_before_kill": len(acked_before_kill),
        "acked_replication": {
            v: list(acked_before_kill.values()).count(v) for v in set(acked_before_kill.values())
        },
        "max_seq_behind": tally.max_seq_behind,
        "max_seconds_behind": tally.max_seconds_behind,
        "restart_to_caught_up_s": round(caught_up_after, 3),
        "catch_up_wait_s": round(catch_up, 3),
        "kill_to_restart_s": round(restarted_at - killed_at, 3),
        "total_s": round(time.monotonic() - began, 3),
    }
    print("chaos summary:", json.dumps(summary))
    assert not tally.failures, tally.failures[:10]
    assert outage_reads > 50, summary
    assert tally.served_by.get("cd-backup", 0) >= outage_reads
    # Semi-synchronous replication held for every write acknowledged while Chengdu followed.
    assert set(acked_before_kill.values()) == {"synced"}, summary
    assert time.monotonic() - began <= 60


def test_promote_the_backup_then_the_old_primary_rejoins(tmp_path: Path) -> None:
    """`idr promote cd-backup` after Chongqing died; Chongqing restarts as Chengdu's follower."""
    hierarchy = start_hierarchy(tmp_path, nodes=["cq-top", "cd-backup", "furniture"])
    try:
        cq, cd = hierarchy.nodes["cq-top"].url, hierarchy.nodes["cd-backup"].url
        control = requests.Session()
        wait_for(lambda: _in_sync(control, cq, cd), 15, "Chengdu to follow Chongqing")
        assert _register(control, cq, "88.7100").headers["X-Idr-Replicated"] == "synced"
        hierarchy.kill("cq-top")
        promoted = run_idr("--data-dir", str(hierarchy.data_dir), "promote", "cd-backup")
        assert promoted.returncode == 0, promoted.stderr
        assert "now the writable primary" in promoted.stdout
        status = _status(control, cd)
        assert (status["role"], status["writable"], status["epoch"]) == ("primary", True, 1)
        # Chengdu takes writes now (the national admin's secret came with the replica).
        assert _register(control, cd, "88.7101").status_code == 201
        # Chongqing returns, finds Chengdu primary at a higher epoch and follows it.
        hierarchy.restart("cq-top", timeout=20)
        wait_for(lambda: _in_sync(control, cd, cq), 15, "Chongqing to follow Chengdu")
        status = _status(control, cq)
        assert (status["role"], status["primary"]["node"], status["epoch"]) == (
            "backup",
            "cd-backup",
            1,
        )
        assert status["resyncs"] == 1
        for prefix in ("88.7100", "88.7101"):
            assert control.get(f"{cq}/api/handles/{prefix}", timeout=5).status_code == 200
        refused = _register(control, cq, "88.7102")
        assert (refused.status_code, refused.json()["responseCode"]) == (503, 7)
        assert "cd-backup" in refused.json()["message"]
        # Reads through the resolver keep working whichever node is primary.
        with Resolver([cq, cd], timeout=2.0) as resolver:
            sample = hierarchy.describe()["samples"]["product"]
            assert resolver.resolve(sample, fresh=True).values
        # The roles survive another restart of both.
        hierarchy.restart("cd-backup", timeout=20)
        hierarchy.restart("cq-top", timeout=20)
        assert _status(control, cd)["role"] == "primary"
        assert _status(control, cq)["role"] == "backup"
    finally:
        hierarchy.stop()
