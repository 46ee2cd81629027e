"""Several workers share a port through SO_REUSEPORT, but never with another listener."""

from __future__ import annotations

import socket

import pytest

from idcore.server import _require_free


def _listener(reuse_port: bool) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn's sockets
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuseport"])
def test_a_port_someone_listens_on_is_refused(reuse_port: bool) -> None:
    held = _listener(reuse_port)
    try:
        with pytest.raises(SystemExit, match=r"cannot listen on 127\.0\.0\.1"):
            _require_free("127.0.0.1", held.getsockname()[1])
    finally:
        held.close()


def test_a_free_port_is_accepted_even_after_connections_on_it() -> None:
    held = _listener(False)
    port = held.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    server_side, _ = held.accept()
    server_side.close()  # the server closes first: its end lingers in TIME_WAIT
    client.close()
    held.close()
    _require_free("127.0.0.1", port)
