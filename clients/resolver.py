"""The client library: resolve identifiers through the top-level nodes (recursive or iterative)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from clients.cache import TTLCache, record_ttl
from idcore.errors import (
    HandleError,
    HandleNotFound,
    NodeTimeout,
    NodeUnreachable,
    ServerError,
    error_for_code,
)
from idcore.identifier import Handle, from_scan
from idcore.records import filter_values
from idcore.site import site_url

DEFAULT_TOP_LEVEL = ("http://127.0.0.1:8000", "http://127.0.0.1:8001")
Mode = Literal["recursive", "iterative"]


@dataclass
class ResolvedRecord:
    """A resolved handle record and the node that answered it."""

    handle: str
    values: list[dict[str, Any]]
    served_by: str
    response_code: int = 1
    cached: bool = False
    path: list[str] = field(default_factory=list)

    def first(self, vtype: str) -> dict[str, Any] | None:
        """The first value of a type."""
        return next((v for v in self.values if v["type"] == vtype), None)

    def data(self, vtype: str) -> Any:
        """The data value of the first value of a type, or None."""
        value = self.first(vtype)
        return None if value is None else value["data"]["value"]

    def to_json(self) -> dict[str, Any]:
        """The Handle JSON form of the record."""
        return {"responseCode": self.response_code, "handle": self.handle, "values": self.values}


class Resolver:
    """Resolves handles through an ordered list of top-level nodes, with a TTL cache."""

    def __init__(
        self,
        top_level: str | Sequence[str] = DEFAULT_TOP_LEVEL,
        *,
        mode: Mode = "recursive",
        timeout: float = 3.0,
        cache_size: int = 10_000,
        negative_ttl: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        urls = [top_level] if isinstance(top_level, str) else list(top_level)
        if not urls:
            raise ValueError("Resolver needs at least one top-level node URL")
        self.top_level = [u.rstrip("/") for u in urls]
        self.mode = mode
        self.timeout = timeout
        self.negative_ttl = negative_ttl
        self.cache: TTLCache[ResolvedRecord] = TTLCache(cache_size)
        self._missing: TTLCache[bool] = TTLCache(cache_size)
        self._referrals: TTLCache[str] = TTLCache(1024)
        self.session = session or _pooled_session()

    # -- public API --------------------------------------------------------------

    def resolve(
        self,
        identifier: str,
        *,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        fresh: bool = False,
    ) -> ResolvedRecord:
        """Resolve an identifier (also `hdl:` forms and consumer URLs); filters apply locally."""
        handle = from_scan(identifier)
        record = self._record(handle, fresh)
        if not types and not indexes:
            return record
        values = filter_values(record.values, list(indexes), list(types))
        return ResolvedRecord(
            handle=record.handle,
            values=values,
            served_by=record.served_by,
            response_code=1 if values else 200,
            cached=record.cached,
            path=record.path,
        )

    def resolve_at(self, base_url: str, identifier: str) -> ResolvedRecord:
        """Ask one node directly, bypassing the hierarchy and the cache."""
        handle = from_scan(identifier)
        return self._get(base_url.rstrip("/"), handle, {})

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution --------------------------------------------------------------

    def _record(self, handle: Handle, fresh: bool) -> ResolvedRecord:
        key = handle.key
        if not fresh:
            hit = self.cache.get(key)
            if hit is not None:
                return _copy_as_cached(hit, handle.text)
            if self._missing.get(key):
                raise HandleNotFound(
                    f"handle {handle.text!r} not found (cached)", handle=handle.text
                )
        try:
            record = self._resolve_uncached(handle, fresh)
        except HandleNotFound:
            self._missing.put(key, True, self.negative_ttl)
            raise
        self.cache.put(key, record, record_ttl(record.values))
        return record

    def _resolve_uncached(self, handle: Handle, fresh: bool) -> ResolvedRecord:
        params = {"auth": "true"} if fresh else {}
        if self.mode == "recursive":
            return self._across_top_level(handle, params)
        return self._iterative(handle, params)

    def _iterative(self, handle: Handle, params: dict[str, str]) -> ResolvedRecord:
        site = self._referrals.get(_prefix_key(handle))
        if site is not None:
            record = self._get(site, handle, params)
            record.path = [site]
            return record
        answer = self._across_top_level(handle, {**params, "recursion": "false"})
        return answer

    def _across_top_level(self, handle: Handle, params: dict[str, str]) -> ResolvedRecord:
        failures: list[HandleError] = []
        for base in self.top_level:
            try:
                return self._get(base, handle, params)
            except (NodeUnreachable, NodeTimeout, ServerError) as exc:
                # Move to the next top-level node; a Handle answer is final.
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        raise NodeUnreachable(
            "no top-level node answered: " + "; ".join(str(f) for f in failures),
            url=",".join(self.top_level),
            handle=handle.text,
        )

    def _get(self, base: str, handle: Handle, params: dict[str, str]) -> ResolvedRecord:
        url = f"{base}/api/handles/{handle.text}"
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise NodeTimeout(
                f"{base} did not answer within {self.timeout}s", url=base, handle=handle.text
            ) from None
        except requests.RequestException as exc:
            raise NodeUnreachable(
                f"{base} is unreachable ({type(exc).__name__})", url=base, handle=handle.text
            ) from None
        try:
            body = resp.json()
            code = int(body["responseCode"])
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                f"{base} answered HTTP {resp.status_code} without Handle JSON", handle=handle.text
            ) from None
        if resp.status_code == 200 and code in (1, 200):
            return ResolvedRecord(
                handle=body.get("handle", handle.text),
                values=body.get("values", []),
                served_by=base,
                response_code=code,
                path=[base],
            )
        if code == 303 and resp.status_code == 300:
            return self._follow_referral(handle, body, params, base)
        if resp.status_code >= 500:
            raise ServerError(
                f"{base} failed: HTTP {resp.status_code} {body.get('message', '')}".strip(),
                handle=handle.text,
            )
        raise error_for_code(code)(body.get("message", f"responseCode {code}"), handle=handle.text)

    def _follow_referral(
        self, handle: Handle, body: dict[str, Any], params: dict[str, str], via: str
    ) -> ResolvedRecord:
        sites = [v for v in body.get("values", []) if v.get("type") == "HS_SITE"]
        if not sites:
            raise ServerError(f"{via} sent a referral without HS_SITE values", handle=handle.text)
        target = site_url(sites[0])
        self._referrals.put(_prefix_key(handle), target, record_ttl(sites))
        clean = {k: v for k, v in params.items() if k != "recursion"}
        record = self._get(target, handle, clean)
        record.path = [via, target]
        return record


def _prefix_key(handle: Handle) -> str:
    return handle.homed_prefix.upper()


def _copy_as_cached(record: ResolvedRecord, spelled: str) -> ResolvedRecord:
    return ResolvedRecord(
        handle=spelled,
        values=record.values,
        served_by=record.served_by,
        response_code=record.response_code,
        cached=True,
        path=record.path,
    )


def _pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=64)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
