"""A batch signs and stores each record as a single PUT would (signatures, stored text).

The batch works out each value's digest entry in its fast value path and hands the
signer a DigestedRecord; SQLite's batch writes bind the record's JSON as UTF-8 bytes cast
to TEXT. Both are checked here from the outside: the signature of a batch item verifies,
covers exactly the stored values and carries the digests a single PUT's does, and the
stored text is the record's JSON as any other write stores it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from idcore.identifier import fold
from idcore.jws import Token
from idcore.signing import Signer, digest_problems, parse_signature, signature_values
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record
from tests.integration.conftest import NODE_ADMIN, PRODUCT, Node, basic, expect, stored

PATH = "/api/batch/handles"


def _send(node: Node, body: Any) -> Any:
    """POST a batch body (bytes as they are) as the node admin; the response."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return node.call(
        "POST",
        PATH,
        headers={"Authorization": basic(NODE_ADMIN)},
        data=raw,
        content_type="application/json",
    )


def _post(node: Node, body: Any) -> dict[str, Any]:
    result: dict[str, Any] = expect(_send(node, body), 200, 1)
    return result


def _signature(node: Node, handle: str) -> tuple[Token, Record]:
    """The record's one HS_SIGNATURE, verified with the node's key."""
    record = stored(node.store, handle)
    assert record is not None
    found = signature_values(record.values)
    assert [v["index"] for v in found] == [400]
    token = parse_signature(found[0])
    signer = node.app.extensions["idr.records"].signer
    assert isinstance(signer, Signer)
    token.verify(signer.ring.current.public)
    assert digest_problems(token.payload, record.values) == []
    assert token.payload["sub"] == record.handle
    return token, record


def _product_values(node: Node) -> list[dict[str, Any]]:
    """The demo product's values as a client would send them (no signature, no timestamps)."""
    record = stored(node.store, PRODUCT)
    assert record is not None
    return [
        {k: v for k, v in value.items() if k != "timestamp"}
        for value in record.values
        if value["type"] != "HS_SIGNATURE"
    ]


def _v(index: int, vtype: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"index": index, "type": vtype, "data": data, **extra}


CASES: dict[str, list[dict[str, Any]]] = {
    "plain": [_v(1, "URL", "http://x/1"), _v(2, "DESC", {"format": "string", "value": "衣柜"})],
    "admin": [
        _v(1, "URL", "http://x/2"),
        _v(
            100,
            "HS_ADMIN",
            {
                "format": "admin",
                "value": {"handle": "88.168.1/ADMIN", "index": 300, "permissions": "0111"},
            },
        ),
    ],
    # Off the fast path (hex data, a hidden value): the general signing path.
    "full-path": [
        _v(1, "URL", "http://x/3"),
        _v(2, "DESC", {"format": "hex", "value": "00ff"}),
        _v(3, "NOTE", "internal", permissions="1100"),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_batch_item_is_signed_as_a_single_put(secondary: Node, name: str) -> None:
    values = CASES[name]
    single, batched = f"88.168.1/SIG-PUT-{name}", f"88.168.1/SIG-BATCH-{name}"
    assert secondary.put(single, values, auth=NODE_ADMIN).status_code in (200, 201)
    result = _post(secondary, {"handles": [{"handle": batched, "values": values}]})
    assert result["succeeded"] == 1, result
    put_token, _ = _signature(secondary, single)
    batch_token, _ = _signature(secondary, batched)
    for field in ("iss", "prefix", "digests"):
        assert batch_token.payload[field] == put_token.payload[field], field
    assert batch_token.kid == put_token.kid


def test_a_template_record_batched_is_signed_as_put(secondary: Node) -> None:
    values = _product_values(secondary)
    assert secondary.put("88.168.1/SIG-PUT-P", values, auth=NODE_ADMIN).status_code in (200, 201)
    items = [{"handle": f"88.168.1/SIG-BATCH-P{n}", "values": values} for n in range(3)]
    assert _post(secondary, {"handles": items})["succeeded"] == 3
    put_token, _ = _signature(secondary, "88.168.1/SIG-PUT-P")
    for n in range(3):
        token, record = _signature(secondary, f"88.168.1/SIG-BATCH-P{n}")
        assert token.payload["digests"] == put_token.payload["digests"]
        assert len(token.payload["digests"]) == len(record.values) - 1


def test_added_values_are_signed_too(secondary: Node) -> None:
    # The SNMS form: templateVersion adds the IDIS.TEMPLATE value, and without an
    # HS_ADMIN the writer's default one is added: both are covered by the signature.
    values = [v for v in _product_values(secondary) if v["index"] not in (100, 1001)]
    item = {
        "handle": "88.168.1/SIG-SNMS",
        "templateVersion": "furniture.product@1",
        "value": values,
    }
    assert _post(secondary, {"handles": [item]})["succeeded"] == 1
    token, record = _signature(secondary, "88.168.1/SIG-SNMS")
    covered = {e["index"] for e in token.payload["digests"]}
    assert {100, 1001} <= covered
    assert covered == {v["index"] for v in record.values} - {400}


def test_the_batch_stores_the_text_any_write_stores(secondary: Node) -> None:
    values = [_v(1, "URL", "http://x/t"), _v(2, "DESC", '床 "quoted" \\ \u2028 tab\t')]
    assert (
        _post(secondary, {"handles": [{"handle": "88.168.1/TEXT-1", "values": values}]})[
            "succeeded"
        ]
        == 1
    )
    store = secondary.store
    assert isinstance(store, SQLiteStore)
    conn = store._conn()
    kind, body, public = conn.execute(
        "SELECT typeof(body), body, public FROM records WHERE key = ?", (fold("88.168.1/TEXT-1"),)
    ).fetchone()
    assert kind == "text" and public == 1
    assert body == Record.loads(body).dumps()
    # A single PUT of the same values stores the same text (but for handle and signature).
    assert secondary.put("88.168.1/TEXT-2", values, auth=NODE_ADMIN).status_code in (200, 201)
    (other,) = conn.execute(
        "SELECT body FROM records WHERE key = ?", (fold("88.168.1/TEXT-2"),)
    ).fetchone()

    def unsigned(text: str) -> list[dict[str, Any]]:
        return [v for v in Record.loads(text).values if v["type"] != "HS_SIGNATURE"]

    assert unsigned(body) == unsigned(other)


def _records() -> list[Record]:
    return [
        Record("88.168.1/U-1", [_v(1, "URL", "http://x", ttl=1, timestamp="t")]),
        Record("88.168.1/U-2", [_v(2, "DESC", "中文 text", ttl=1, timestamp="t")]),
        # A lone surrogate: the JSON encoder's stdlib fallback escapes it (ASCII JSON).
        Record("88.168.1/U-3", [_v(2, "DESC", "a\ud800b", ttl=1, timestamp="t")]),
    ]


def test_the_utf8_body_is_record_dumps() -> None:
    for record in _records():
        assert record.dumps_utf8() == record.dumps().encode("utf-8")


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16le"])
def test_batch_writes_read_back_whatever_the_file_s_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "node.sqlite3"
    with sqlite3.connect(path) as conn:  # a file made by someone else, in that encoding
        conn.execute(f"PRAGMA encoding = '{encoding}'")
        conn.execute("CREATE TABLE made (x)")
    conn.close()
    store = SQLiteStore(path)
    try:
        records = _records()
        store.put_many(records[:2])
        store.mutate_many([records[2].key], lambda keys, current: [records[2]])
        assert store.get_many([r.key for r in records]) == records
        rows = store._conn().execute("SELECT typeof(body), body FROM records ORDER BY key")
        assert [(kind, Record.loads(body)) for kind, body in rows] == [("text", r) for r in records]
        assert store.public_values_text(records[1].key) == (
            True,
            json.dumps(records[1].values, ensure_ascii=False, separators=(",", ":")),
        )
    finally:
        store.close()


def test_a_lone_surrogate_is_refused_when_the_stdlib_reads_the_body(secondary: Node) -> None:
    # 19 digits in a row send the whole body to the stdlib reader (orjson would read a
    # number that long as a float); the lone surrogate must still be refused.
    values = [_v(1, "URL", "a\ud800b", ttl=10**19)]
    raw = json.dumps({"handles": [{"handle": "88.168.1/LONE-3", "values": values}]}).encode()
    assert b"\\ud800" in raw and b"10000000000000000000" in raw
    before = secondary.dump()
    expect(_send(secondary, raw), 400, 4, "surrogate")
    assert secondary.dump() == before
