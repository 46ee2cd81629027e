"""Run a WSGI app under gunicorn (threaded workers), as every node process does."""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def serve(
    app: Any, host: str, port: int, *, workers: int = 1, threads: int = 16, name: str = "idr"
) -> None:
    """Serve until SIGTERM/SIGINT; the app is built before workers fork (preloaded)."""
    if workers > 1:
        _require_free(host, port)
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "proc_name": name,
        # Stop quickly so ports are free at once when the launcher stops a node.
        "graceful_timeout": 2,
        "timeout": 60,
        "keepalive": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        # Several workers: each binds its own socket (SO_REUSEPORT) and the kernel spreads
        # connections across them. On one shared socket, whichever worker woke first took
        # them all: seen taking 64 of 64 connections, halving the node's throughput.
        "reuse_port": workers > 1,
    }
    _Server(app, options).run()


def _require_free(host: str, port: int) -> None:
    """Exit unless nothing listens on host:port.

    Workers bound with SO_REUSEPORT would share the port with a stale node of ours that
    still holds it, and answer half of its requests; a plain bind refuses instead.
    """
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    # As gunicorn's own sockets: connections of a previous run in TIME_WAIT are no obstacle.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        probe.close()
