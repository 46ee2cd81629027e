"""Run a WSGI app under gunicorn (threaded workers), as every node process does."""

from __future__ import annotations

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
    }
    _Server(app, options).run()
