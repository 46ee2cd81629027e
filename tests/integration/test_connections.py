"""The top level's plain connections: kept alive, replaced when closed, never retried."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from resolver.connections import Connections


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.client_address[1]))
        if self.path.startswith("/drop"):
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        body = b'{"responseCode":1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/close"):
            self.close_connection = True  # closed after answering, without saying so
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, int]]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_one_connection_carries_many_requests(server: _Server) -> None:
    conns = Connections()
    for i in range(3):
        assert conns.get(_url(server, f"/a{i}?x=1"), 5) == (200, b'{"responseCode":1}')
    assert [p for p, _ in server.requests] == ["/a0?x=1", "/a1?x=1", "/a2?x=1"]
    assert len({port for _, port in server.requests}) == 1


def test_a_connection_the_peer_closed_is_replaced_before_use(server: _Server) -> None:
    conns = Connections()
    assert conns.get(_url(server, "/close"), 5)[0] == 200
    time.sleep(0.1)  # the server has closed its end by now
    assert conns.get(_url(server, "/after"), 5)[0] == 200
    assert len({port for _, port in server.requests}) == 2


def test_a_dropped_request_fails_once_and_is_not_sent_again(server: _Server) -> None:
    conns = Connections()
    assert conns.get(_url(server, "/warm"), 5)[0] == 200
    with pytest.raises((http.client.HTTPException, OSError)):
        conns.get(_url(server, "/drop"), 5)
    assert [p for p, _ in server.requests] == ["/warm", "/drop"]
    assert conns.get(_url(server, "/again"), 5)[0] == 200, "a new connection after the drop"


def test_a_silent_peer_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        with pytest.raises(TimeoutError):
            Connections().get(f"http://127.0.0.1:{listener.getsockname()[1]}/slow", 0.2)
    finally:
        listener.close()


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="plain http"):
        Connections().get("https://127.0.0.1:1/x", 1)
