"""Plain reads answered with the stored values' text: the same answers as the general path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idcore.handle_api import records
from idcore.identifier import parse_handle
from idcore.sqlite_store import SQLiteStore
from idcore.store import Record
from idcore.web import values_answer, values_text_answer
from tests.integration.conftest import Node


def _general(node: Node, handle: str) -> Any:
    """The answer the general path gives: decode, filter public values, encode."""
    with node.app.test_request_context():
        values = records().resolve(parse_handle(handle))
        return json.loads(values_answer(handle, values).get_data())


def test_every_demo_record_reads_the_same_both_ways(secondary: Node) -> None:
    handles = secondary.get("/api/handles?prefix=88.168.1").get_json()["handles"]
    handles += secondary.get("/api/handles?prefix=88.168.2").get_json()["handles"]
    assert len(handles) > 20
    fast = 0
    for handle in handles:
        resp = secondary.get(f"/api/handles/{handle}")
        assert resp.status_code == 200
        assert resp.get_json() == _general(secondary, handle), handle
        found, text = secondary.store.public_values_text(parse_handle(handle).key)  # type: ignore[attr-defined]
        assert found
        fast += text is not None
    assert fast >= len(handles) - 2, "all but the ADMIN records go the stored way"


def test_a_record_with_a_private_value_never_shows_it(secondary: Node) -> None:
    found, text = secondary.store.public_values_text("88.168.1/ADMIN")  # type: ignore[attr-defined]
    assert found and text is None, "HS_SECKEY is not public: the general path filters it"
    body = secondary.get("/api/handles/88.168.1/ADMIN").get_json()
    assert "HS_SECKEY" not in json.dumps(body)


def test_a_spelling_other_than_the_stored_one_is_echoed(secondary: Node) -> None:
    body = secondary.get("/api/handles/88.168.1/ward-2024-000123").get_json()
    assert body["handle"] == "88.168.1/ward-2024-000123" and body["responseCode"] == 1


@pytest.mark.parametrize(
    ("values", "code"),
    [([], 200), ([{"index": 1, "type": "URL", "data": {"format": "string", "value": "衣柜"}}], 1)],
)
def test_the_stored_text_is_spliced_whole(tmp_path: Path, values: list[Any], code: int) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.put_many([Record("88.168.1/Q", values)])
    found, text = store.public_values_text("88.168.1/Q")
    assert found and text is not None and json.loads(text) == values
    with Flask(__name__).test_request_context():
        body = json.loads(values_text_answer("88.168.1/q", text).get_data())
    assert body == {"responseCode": code, "handle": "88.168.1/q", "values": values}
    assert store.public_values_text("88.168.1/NONE") == (False, None)


def test_a_file_from_before_the_column_is_upgraded_and_read_the_general_way(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE records (key TEXT PRIMARY KEY, prefix TEXT NOT NULL, "
        "handle TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID"
    )
    old = Record("88.168.1/OLD", [{"index": 1, "type": "URL", "data": "x"}])
    conn.execute(
        "INSERT INTO records VALUES (?, ?, ?, ?)", (old.key, "88.168.1", old.handle, old.dumps())
    )
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.get("88.168.1/OLD") == old
    assert store.public_values_text("88.168.1/OLD") == (True, None), "NULL: the general way"
    store.put_many([old])
    assert store.public_values_text("88.168.1/OLD")[1] is not None, "rewritten with the flag"
