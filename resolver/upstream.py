"""Recursion: resolve at the secondary node that homes a prefix, caching by TTL."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import quote

import requests

from clients.cache import TTLCache, record_ttl
from idcore import jsontext
from idcore.errors import (
    HandleError,
    HandleNotFound,
    NodeTimeout,
    NodeUnreachable,
    ServerError,
    error_for_code,
)
from idcore.identifier import Handle
from resolver.connections import Connections

_NOT_FOUND: list[dict[str, Any]] = []


class UpstreamGatewayError(NodeUnreachable):
    """The secondary node could not be reached (HTTP 502)."""

    @property
    def http_status(self) -> int:
        """Gateway semantics: the top-level node is fine, the node behind it is not."""
        return 502


class UpstreamTimeout(NodeTimeout):
    """The secondary node did not answer in time (HTTP 504)."""

    @property
    def http_status(self) -> int:
        """Gateway timeout."""
        return 504


class Upstream:
    """Fetches whole records from secondary nodes and caches answers (negative ones briefly)."""

    def __init__(self, *, timeout: float, negative_ttl: float, capacity: int) -> None:
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        self.cache: TTLCache[list[dict[str, Any]]] = TTLCache(capacity)
        # Plain connections carry the traffic; the session stays for adapters that tests
        # and in-process hierarchies mount per node, and for https.
        self.connections = Connections()
        self.session = requests.Session()
        self._adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=64)
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", requests.adapters.HTTPAdapter())

    def fetch(self, base_url: str, handle: Handle, fresh: bool = False) -> list[dict[str, Any]]:
        """All public values of a record at its home node; HandleNotFound if it has none."""
        key = handle.key
        if not fresh:
            cached = self.cache.get(key)
            if cached is _NOT_FOUND:
                raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
            if cached is not None:
                return cached
        values = self._get(base_url, handle)
        if values is None:
            self.cache.put(key, _NOT_FOUND, self.negative_ttl)
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        self.cache.put(key, values, record_ttl(values))
        return values

    def _get(self, base_url: str, handle: Handle) -> list[dict[str, Any]] | None:
        # Percent-encode: a suffix may hold '?', '#', '%' or spaces (the node decodes it).
        url = f"{base_url}/api/handles/{quote(handle.text, safe='/')}"
        try:
            status, raw = self._send(url)
        except (TimeoutError, requests.Timeout):
            raise UpstreamTimeout(
                f"node {base_url} did not answer within {self.timeout}s",
                url=base_url,
                handle=handle.text,
            ) from None
        except (OSError, http.client.HTTPException, requests.RequestException) as exc:
            raise UpstreamGatewayError(
                f"node {base_url} is unreachable: {type(exc).__name__}",
                url=base_url,
                handle=handle.text,
            ) from None
        try:
            body = jsontext.loads(raw)
            code = int(body.get("responseCode", 2))
        except (ValueError, AttributeError, TypeError):
            raise ServerError(
                f"node {base_url} answered HTTP {status} without Handle JSON",
                handle=handle.text,
            ) from None
        if code in (1, 200) and status == 200:
            values: list[dict[str, Any]] = body.get("values", [])
            return values
        if code == 100:
            return None
        if status >= 500:
            # The top-level node is fine; the node behind it failed: say so with a 502 so
            # clients do not count it against this node.
            raise UpstreamGatewayError(
                f"node {base_url} failed: HTTP {status} responseCode {code} "
                f"{body.get('message', '')}".strip(),
                url=base_url,
                handle=handle.text,
            )
        err: HandleError = error_for_code(code)(
            f"node {base_url}: {body.get('message', 'error')}", handle=handle.text
        )
        raise err

    def _send(self, url: str) -> tuple[int, bytes]:
        """Status and body of a GET: plain connections, or the session where one is mounted."""
        if self.session.get_adapter(url) is self._adapter:
            return self.connections.get(url, self.timeout)
        # An adapter mounted for this node (an in-process hierarchy's WSGI apps).
        resp = self.session.get(url, timeout=self.timeout)
        return resp.status_code, resp.content
