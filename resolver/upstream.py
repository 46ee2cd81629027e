"""Recursion: resolve at the secondary node that homes a prefix, caching by TTL."""

from __future__ import annotations

import http.client
from collections.abc import Sequence
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
MULTI_GET_HANDLES = 50
"""Identifiers per multi-get: well inside the node's limit and gunicorn's request line."""


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
        if not fresh:
            cached = self._cached(handle)
            if cached is not None:
                return cached
        # Percent-encode: a suffix may hold '?', '#', '%' or spaces (the node decodes it).
        url = f"{base_url}/api/handles/{quote(handle.text, safe='/')}"
        status, body = self._request(base_url, url, handle.text)
        return self._keep(handle, self._answer(base_url, handle.text, status, body))

    def fetch_many(
        self, base_url: str, handles: Sequence[Handle]
    ) -> list[list[dict[str, Any]] | HandleError]:
        """Several records of one node, in order: their values or the error each would raise.

        Cached answers are used; the rest are asked for in multi-gets of at most
        MULTI_GET_HANDLES identifiers. An error of the request itself (timeout, node
        unreachable) is raised; a node without the multi-get route is asked one by one.
        """
        out: list[list[dict[str, Any]] | HandleError | None] = []
        missing: list[int] = []
        for i, handle in enumerate(handles):
            try:
                out.append(self._cached(handle))
            except HandleNotFound as exc:
                out.append(exc)
            if out[-1] is None:
                missing.append(i)
        for start in range(0, len(missing), MULTI_GET_HANDLES):
            chunk = missing[start : start + MULTI_GET_HANDLES]
            query = "&".join(f"handle={quote(handles[i].text, safe='/')}" for i in chunk)
            url = f"{base_url}/api/batch/handles?{query}"
            status, body = self._request(base_url, url, handles[chunk[0]].text, lenient=True)
            items = body.get("results")
            if status in (404, 405) and not isinstance(items, list):
                for i in chunk:  # a node without the route (not this emulator's)
                    out[i] = self._one(base_url, handles[i])
                continue
            if status != 200 or not isinstance(items, list) or len(items) != len(chunk):
                raise ServerError(
                    f"node {base_url} answered a multi-get with HTTP {status}",
                    handle=handles[chunk[0]].text,
                )
            for i, item in zip(chunk, items, strict=True):
                out[i] = self._item(base_url, handles[i], item)
        return [r for r in out if r is not None]

    def _one(self, base_url: str, handle: Handle) -> list[dict[str, Any]] | HandleError:
        try:
            return self.fetch(base_url, handle, fresh=True)
        except HandleError as exc:
            return exc

    def _item(self, base_url: str, handle: Handle, item: Any) -> list[dict[str, Any]] | HandleError:
        """One result of a multi-get, as the same identifier's own GET would have ended."""
        try:
            if not isinstance(item, dict):
                raise ServerError(f"node {base_url} answered a multi-get item without JSON")
            if item.get("dropped"):
                raise UpstreamGatewayError(
                    f"node {base_url} dropped the connection", url=base_url, handle=handle.text
                )
            status = item.get("status")
            answer = self._answer(
                base_url, handle.text, status if isinstance(status, int) else 502, item
            )
            return self._keep(handle, answer)
        except HandleError as exc:
            return exc

    def _cached(self, handle: Handle) -> list[dict[str, Any]] | None:
        """The cached values; HandleNotFound for a cached miss; None if nothing is cached."""
        cached = self.cache.get(handle.key)
        if cached is _NOT_FOUND:
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        return cached

    def _keep(self, handle: Handle, values: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """Cache an answer (a miss briefly); HandleNotFound for a miss."""
        if values is None:
            self.cache.put(handle.key, _NOT_FOUND, self.negative_ttl)
            raise HandleNotFound(f"handle {handle.text!r} not found", handle=handle.text)
        self.cache.put(handle.key, values, record_ttl(values))
        return values

    def _request(
        self, base_url: str, url: str, text: str, lenient: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Status and JSON object of a GET; the gateway errors for what went wrong.

        `lenient`: a 404 or 405 without JSON (a server without the route) gives {}.
        """
        try:
            status, raw = self._send(url)
        except (TimeoutError, requests.Timeout):
            raise UpstreamTimeout(
                f"node {base_url} did not answer within {self.timeout}s", url=base_url, handle=text
            ) from None
        except (OSError, http.client.HTTPException, requests.RequestException) as exc:
            raise UpstreamGatewayError(
                f"node {base_url} is unreachable: {type(exc).__name__}", url=base_url, handle=text
            ) from None
        try:
            body = jsontext.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if lenient and status in (404, 405):
                return status, {}
            raise ServerError(
                f"node {base_url} answered HTTP {status} without Handle JSON", handle=text
            )
        return status, body

    def _answer(
        self, base_url: str, text: str, status: int, body: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """The values of a resolve answer; None for not found; the Handle error otherwise."""
        try:
            code = int(body.get("responseCode", 2))
        except (TypeError, ValueError):
            raise ServerError(
                f"node {base_url} answered without a responseCode", handle=text
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
                handle=text,
            )
        err: HandleError = error_for_code(code)(
            f"node {base_url}: {body.get('message', 'error')}", handle=text
        )
        raise err

    def _send(self, url: str) -> tuple[int, bytes]:
        """Status and body of a GET: plain connections, or the session where one is mounted."""
        if self.session.get_adapter(url) is self._adapter:
            return self.connections.get(url, self.timeout)
        # An adapter mounted for this node (an in-process hierarchy's WSGI apps).
        resp = self.session.get(url, timeout=self.timeout)
        return resp.status_code, resp.content
