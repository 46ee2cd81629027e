"""A requests transport that sends requests straight into WSGI apps, without sockets."""

from __future__ import annotations

import time
from collections.abc import Mapping
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idcore.faults import DROP_ENVIRON_KEY


class WSGIAdapter(BaseAdapter):
    """Route `http://host:port/...` to an in-process WSGI app (tests and the pytest plugin).

    Like a socket, it raises `requests.ConnectionError` when the app drops the connection
    (an injected fault) and `requests.ReadTimeout` when the answer took longer than the
    read timeout (checked after the fact: the app cannot be interrupted).
    """

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        """Call the app with the request and wrap its answer as a requests.Response."""
        url = urlsplit(request.url or "")
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        builder = EnvironBuilder(
            method=request.method or "GET",
            path=url.path,
            query_string=url.query,
            headers=list(request.headers.items()),
            data=body or b"",
            base_url=f"{url.scheme}://{url.netloc}",
        )
        environ = builder.get_environ()
        dropped: list[bool] = []
        environ[DROP_ENVIRON_KEY] = lambda: dropped.append(True)
        began = time.monotonic()
        # Keep the raw (still percent-encoded) path as a real server would pass it.
        app_iter, status, headers = run_wsgi_app(self.app, environ)
        content = b"".join(app_iter)
        if hasattr(app_iter, "close"):
            app_iter.close()
        if dropped:
            # What a client sees when the server closes the socket without an answer.
            raise requests.ConnectionError(
                f"connection to {url.netloc} closed without an answer (injected drop)",
                request=request,
            )
        read_timeout = _read_timeout(kwargs.get("timeout"))
        if read_timeout is not None and time.monotonic() - began > read_timeout:
            raise requests.ReadTimeout(
                f"{url.netloc} did not answer within {read_timeout}s", request=request
            )
        resp = requests.Response()
        resp.status_code = int(status.split(" ", 1)[0])
        resp.reason = status.split(" ", 1)[1] if " " in status else ""
        resp.headers = CaseInsensitiveDict(dict(headers))
        resp.raw = BytesIO(content)
        resp._content = content
        resp.url = request.url or ""
        resp.request = request
        resp.encoding = "utf-8"
        return resp

    def close(self) -> None:
        """Nothing to release."""


def _read_timeout(timeout: Any) -> float | None:
    if isinstance(timeout, tuple):
        timeout = timeout[1]
    return float(timeout) if isinstance(timeout, int | float) else None


def mount_apps(session: requests.Session, apps: Mapping[str, Any]) -> requests.Session:
    """Mount each `base_url → app` on a session."""
    for base, app in apps.items():
        session.mount(base.rstrip("/") + "/", WSGIAdapter(app))
    return session
