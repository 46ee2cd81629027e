"""Trusted resolution with real node processes: `idr trust`, `idr resolve --verify`,
`idr trace` marks, the consumer page badge, `idr keys rotate`; stores edited behind the
running nodes' backs (sqlite3 on the SQLite file, a Redis client on Redis)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.launcher import Hierarchy
from idcore.identifier import fold
from idcore.keys import public_jwk
from idcore.record_codec import decode, encode
from tests.support.hierarchy import start_hierarchy
from tests.support.trace_chains import put_record, run_idr, top_url

PRODUCT = "88.168.1/WARD-2024-000123"
# On the product's trace and never fetched through the top-level node before it is
# tampered with (the top-level node caches what it fetched).
LOT = "88.169.1/BOARD-LOT-2024-0305"
UNTRUSTED = 5


def tamper(values: list[dict[str, Any]]) -> None:
    """Change the first template item of a record (what a rogue DBA would do)."""
    item = next(v for v in values if v["index"] >= 2000)
    item["data"] = {"format": "string", "value": "changed behind the node's back"}


def edit_sqlite(data_dir: Path, node: str, handle: str, change: Callable[..., None]) -> None:
    """Rewrite one record in a running node's SQLite file with Python's sqlite3."""
    with sqlite3.connect(data_dir / f"{node}.sqlite3") as conn:
        (body,) = conn.execute("SELECT body FROM records WHERE key = ?", (fold(handle),)).fetchone()
        raw = json.loads(body)
        change(raw["v"])
        conn.execute("UPDATE records SET body = ? WHERE key = ?", (json.dumps(raw), fold(handle)))
    conn.close()


@pytest.fixture(scope="module")
def pinned(running_hierarchy: Hierarchy) -> Path:
    """`idr trust fetch` on the module's hierarchy; the anchor file it wrote."""
    data = running_hierarchy.data_dir
    shown = run_idr(data, "trust", "show")
    assert shown.returncode == 1 and "no trust anchor pinned" in shown.stderr
    done = run_idr(data, "trust", "fetch")
    assert done.returncode == 0, done.stderr
    assert "first use" in done.stdout
    return data / "anchor.json"


def test_trust_fetch_pins_the_top_level_key_and_show_prints_it(
    running_hierarchy: Hierarchy, pinned: Path
) -> None:
    data = running_hierarchy.data_dir
    keys = json.loads((data / "keys" / "cq-top" / "public.json").read_text())["keys"]
    kid = keys[0]["kid"]
    shown = run_idr(data, "trust", "show")
    assert shown.returncode == 0, shown.stderr
    assert kid in shown.stdout and f"SHA256:{kid}" in shown.stdout
    assert json.loads(pinned.read_text())["keys"][0]["kid"] == kid
    again = run_idr(data, "trust", "fetch")
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_a_record_edited_in_sqlite_is_untrusted_in_resolve_trace_and_page(
    running_hierarchy: Hierarchy, pinned: Path
) -> None:
    data = running_hierarchy.data_dir
    ok = run_idr(data, "resolve", PRODUCT, "--verify")
    assert ok.returncode == 0, ok.stderr
    assert "✓ trusted (signed by furniture for 88.168" in ok.stdout

    edit_sqlite(data, "timber", LOT, tamper)
    bad = run_idr(data, "resolve", LOT, "--verify")
    assert bad.returncode == UNTRUSTED, (bad.stdout, bad.stderr)
    assert "untrusted: digest mismatch" in bad.stderr
    as_json = run_idr(data, "resolve", LOT, "--verify", "--json")
    assert as_json.returncode == UNTRUSTED
    assert json.loads(as_json.stdout)["trust"]["reason"] == "digest mismatch"

    traced = run_idr(data, "trace", PRODUCT)
    assert traced.returncode == 0, traced.stderr
    line = next(row for row in traced.stdout.splitlines() if LOT in row and "@ timber" in row)
    assert "✗ UNTRUSTED: digest mismatch" in line
    assert "✓ " in traced.stdout
    summary = next(row for row in traced.stdout.splitlines() if row.startswith("trust: "))
    assert summary.startswith("trust: 1 UNTRUSTED, 29 trusted") and LOT in summary

    page = requests.get(f"{top_url(running_hierarchy)}/t/{PRODUCT}?lang=en", timeout=10).text
    assert 'id="product-trust" data-trust="trusted">✓ Trusted: signature verified' in page
    assert "✗ UNTRUSTED: signature check failed · data differs from what was signed" in page
    assert "Signatures: 29 trusted, 1 untrusted, 0 unverified" in page
    zh = requests.get(f"{top_url(running_hierarchy)}/t/{PRODUCT}?lang=zh", timeout=10).text
    assert "不可信：签名校验失败 · 数据与签名不符" in zh
    api = requests.get(f"{top_url(running_hierarchy)}/api/trace/{PRODUCT}", timeout=10).json()
    assert api["trust"] == {"trusted": 29, "untrusted": 1, "unknown": 0, "verdict": "untrusted"}


def test_a_swapped_anchor_is_refused(
    running_hierarchy: Hierarchy, pinned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "swapped.json"
    other = public_jwk(Ed25519PrivateKey.generate().public_key())
    fake.write_text(json.dumps({"prefix": "88", "keys": [other]}))
    monkeypatch.setenv("IDR_TRUST_ANCHOR", str(fake))
    data = running_hierarchy.data_dir
    refused = run_idr(data, "trust", "fetch")
    assert refused.returncode == UNTRUSTED
    assert "THE TOP-LEVEL TRUST ANCHOR HAS CHANGED. REFUSED." in refused.stderr
    assert json.loads(fake.read_text())["keys"] == [other]  # the pin is left alone
    resolved = run_idr(data, "resolve", PRODUCT, "--verify")
    assert resolved.returncode == UNTRUSTED and "anchor mismatch" in resolved.stderr
    replaced = run_idr(data, "trust", "fetch", "--replace")
    assert replaced.returncode == 0 and "replaced" in replaced.stdout


def test_keys_rotate_keeps_old_records_trusted_and_signs_new_ones(
    running_hierarchy: Hierarchy, pinned: Path
) -> None:
    data = running_hierarchy.data_dir
    rotated = run_idr(data, "keys", "rotate", "timber")
    assert rotated.returncode == 0, rotated.stderr
    assert "0.NA/88.169 on cq-top now delegates" in rotated.stdout
    old = run_idr(data, "resolve", "88.169.1/BOARD-LOT-2024-0312", "--verify", "--fresh")
    assert old.returncode == 0, old.stderr
    put_record(running_hierarchy, "88.169.1/SYS-TRUST-NEW", ("name", "after rotation"))
    new = run_idr(data, "resolve", "88.169.1/SYS-TRUST-NEW", "--verify")
    assert new.returncode == 0, new.stderr
    assert old.stdout.split("key ")[-1] != new.stdout.split("key ")[-1]

    top = run_idr(data, "keys", "rotate", "cq-top")
    assert top.returncode == 0, top.stderr
    rolled = run_idr(data, "trust", "fetch")
    assert rolled.returncode == 0 and "rolled over" in rolled.stdout, rolled.stderr
    assert run_idr(data, "resolve", PRODUCT, "--verify", "--fresh").returncode == 0
    assert run_idr(data, "keys", "rotate", "cd-backup").returncode == 2


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_hierarchy(tmp_path: Path, redis_url: str) -> Iterator[Hierarchy]:
    """cq-top and furniture as processes on the private Redis."""
    hierarchy = start_hierarchy(tmp_path, "redis", redis_url, nodes=["cq-top", "furniture"])
    try:
        yield hierarchy
    finally:
        hierarchy.stop()


@pytest.mark.redis
def test_a_record_edited_in_redis_is_untrusted(redis_hierarchy: Hierarchy, redis_url: str) -> None:
    data = redis_hierarchy.data_dir
    assert run_idr(data, "trust", "fetch").returncode == 0
    item = "88.168.1/STEP-2024-0512-02-EDGE"
    assert run_idr(data, "resolve", item, "--verify", "--fresh").returncode == 0
    client = redis.Redis.from_url(redis_url)
    try:
        # The node's key layout (idcore/redis_store.py): idr:{<node>:<prefix>}:r:<handle>.
        name = f"idr:{{furniture:88.168.1}}:r:{fold(item)}"
        record = decode(client.get(name) or b"")
        tamper(record.values)
        client.set(name, encode(record))
    finally:
        client.close()
    bad = run_idr(data, "resolve", item, "--verify", "--fresh")
    assert bad.returncode == UNTRUSTED and "digest mismatch" in bad.stderr, bad.stderr
