"""bench/load.py against a real HTTP server on loopback: the Python tool, and wrk if present."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.load import Paths, run_load, wrk_available


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the nodes answer
    seen: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        _Handler.seen.add(self.path)
        status = 404 if self.path.endswith("/missing") else 200
        body = b'{"responseCode":1}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = set()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_python_tool_spreads_requests_and_counts_errors(server: str) -> None:
    result = run_load(server, Paths.numbered("/id/%03d", 20), 4, 0.5, tool="python")
    assert result.tool == "python" and result.connections == 4
    assert result.requests > 20 and result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert len(_Handler.seen) > 10
    missing = run_load(server, Paths.of(["/missing"]), 1, 0.3, tool="python")
    assert missing.errors == missing.requests > 0


def test_python_tool_in_order_visits_every_path(server: str) -> None:
    run_load(server, Paths.numbered("/seq/%d", 30), 3, 0.5, order="seq", tool="python")
    assert {f"/seq/{i}" for i in range(30)} <= _Handler.seen


@pytest.mark.skipif(not wrk_available(), reason="wrk is not installed (apt-get install wrk)")
def test_wrk_with_the_identifier_script(server: str) -> None:
    result = run_load(server, Paths.numbered("/id/%03d", 50), 2, 1.0, tool="wrk")
    assert result.tool == "wrk" and result.requests > 0 and result.errors == 0
    assert result.p50_ms > 0
    assert len(_Handler.seen) > 10
    run_load(server, Paths.of([f"/f/{i}" for i in range(5)]), 1, 1.0, order="seq", tool="wrk")
    assert {f"/f/{i}" for i in range(5)} <= _Handler.seen
