"""The top level's plain connections: kept alive, replaced when closed, never retried."""

from __future__ import annotations

import http.client
import json
import select
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from idcore.identifier import parse_handle
from resolver.connections import Connections
from resolver.upstream import Upstream, UpstreamGatewayError, UpstreamTimeout


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
    closed: threading.Event

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        self.closed.set()  # the server's end of a connection is closed now


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    srv.closed = threading.Event()
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
    # Waited for, not slept on: on a loaded machine 0.1 s was once not enough.
    assert server.closed.wait(5), "the server closes its end"
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


def test_several_requests_on_their_way_at_once_each_on_its_own_connection(
    server: _Server,
) -> None:
    conns = Connections()
    sent = [conns.start(_url(server, f"/s{i}"), 5) for i in range(3)]
    with selectors.DefaultSelector() as selector:
        for item in sent:
            selector.register(item.fileno(), selectors.EVENT_READ, item)
        answers = []
        while selector.get_map():
            for key, _ in selector.select(5):
                selector.unregister(key.fileobj)
                answers.append(key.data.finish())
    assert answers == [(200, b'{"responseCode":1}')] * 3
    assert len({port for _, port in server.requests}) == 3
    # All three are kept: the next three GETs need no new connection.
    for i in range(3):
        assert conns.get(_url(server, f"/again{i}"), 5)[0] == 200
    assert len({port for _, port in server.requests}) == 3


def test_an_abandoned_request_is_never_reused(server: _Server) -> None:
    conns = Connections()
    conns.start(_url(server, "/given-up"), 5).abandon()
    assert conns.get(_url(server, "/next"), 5)[0] == 200
    assert len({port for _, port in server.requests}) == 2


class _MultiGet(BaseHTTPRequestHandler):
    """A node's multi-get route: every handle found, with one URL value."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        handles = parse_qs(urlsplit(self.path).query)["handle"]
        results = [
            {
                "handle": h,
                "responseCode": 1,
                "status": 200,
                "values": [{"index": 1, "type": "URL", "data": {"format": "string", "value": h}}],
            }
            for h in handles
        ]
        body = json.dumps({"responseCode": 1, "results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_multi_get_started_now_is_read_when_it_arrives_and_cached() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _MultiGet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    upstream = Upstream(timeout=5, negative_ttl=5, capacity=100)
    handles = [parse_handle("88.168.1/A"), parse_handle("88.168.1/B")]
    try:
        pending = upstream.start_many(base, handles)
        fd = pending.fileno()
        assert fd is not None
        select.select([fd], [], [], 5)
        found = pending.finish()
        assert [v[0]["data"]["value"] for v in found if isinstance(v, list)] == [
            "88.168.1/A",
            "88.168.1/B",
        ]
        again = upstream.start_many(base, handles)
        assert again.fileno() is None, "cached: answered at once"
        assert again.finish() == found
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_multi_get_to_a_closed_port_fails_at_once_and_a_silent_one_expires() -> None:
    upstream = Upstream(timeout=0.2, negative_ttl=5, capacity=100)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(UpstreamGatewayError):
        upstream.start_many(f"http://127.0.0.1:{port}", [parse_handle("88.168.1/A")])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        pending = upstream.start_many(base, [parse_handle("88.168.1/A")])
        assert pending.fileno() is not None
        assert pending.expires_at <= time.monotonic() + 0.2
        late = pending.expire()
        assert isinstance(late, UpstreamTimeout) and "within 0.2s" in late.message
    finally:
        listener.close()
