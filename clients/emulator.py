"""A client of the emulator controls (`/_emulator/...`): faults, journal, reset.

For users' own tests as much as for `idr fault`, `idr journal` and `idr reset`:

    node = EmulatorClient("http://127.0.0.1:8101")
    node.set_faults([{"kind": "error", "probability": 0.3, "seed": 7}])
    ...
    node.reset()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from clients.answer import json_answer
from clients.launcher import read_hierarchy
from idcore.errors import NodeTimeout, NodeUnreachable


class UnknownNode(LookupError):
    """A node name that the running hierarchy does not have."""


def node_url(node: str, data_dir: Path) -> str:
    """A node's base URL: `node` itself if it is a URL, else its name in hierarchy.json."""
    if node.startswith(("http://", "https://")):
        return node.rstrip("/")
    info = read_hierarchy(data_dir)
    names = [n["name"] for n in info["nodes"]]
    for entry in info["nodes"]:
        if entry["name"] == node:
            return str(entry["url"]).rstrip("/")
    raise UnknownNode(f"no node named {node!r} runs: choose one of {', '.join(names)} or a URL")


def all_node_urls(data_dir: Path) -> dict[str, str]:
    """Every running node's name and URL, from hierarchy.json."""
    info = read_hierarchy(data_dir)
    return {n["name"]: str(n["url"]).rstrip("/") for n in info["nodes"]}


class EmulatorClient:
    """The controls of one node."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, session: requests.Session | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    # -- faults -------------------------------------------------------------------------

    def faults(self) -> list[dict[str, Any]]:
        """The node's fault rules, with ids, effective seeds and counters."""
        return list(self._call("GET", "/faults")["faults"])

    def set_faults(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Replace every rule (their random streams restart from their seeds)."""
        return list(self._call("PUT", "/faults", {"faults": list(rules)})["faults"])

    def add_faults(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add rules after the existing ones; the added rules come back."""
        return list(self._call("POST", "/faults", {"faults": list(rules)})["faults"])

    def remove_fault(self, rule_id: str) -> list[dict[str, Any]]:
        """Remove one rule; the remaining rules come back."""
        return list(self._call("DELETE", f"/faults/{rule_id}")["faults"])

    def clear_faults(self) -> None:
        """Remove every rule."""
        self._call("DELETE", "/faults")

    def fault_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The faults injected so far, oldest first."""
        params = {"limit": str(limit)} if limit else None
        return list(self._call("GET", "/faults/log", params=params)["events"])

    # -- journal and reset --------------------------------------------------------------

    def journal(self, limit: int | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Recent requests, oldest first."""
        params = {"since": str(since)}
        if limit:
            params["limit"] = str(limit)
        return list(self._call("GET", "/journal", params=params)["entries"])

    def clear_journal(self) -> None:
        """Forget the recorded requests."""
        self._call("DELETE", "/journal")

    def reset(self, keep_faults: bool = False) -> dict[str, Any]:
        """Restore the seeded data; clear caches, the journal and (unless kept) the faults."""
        params = {"keepFaults": "true"} if keep_faults else None
        return self._call("POST", "/reset", params=params)

    # -- transport ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        url = f"{self.base_url}/_emulator{path}"
        try:
            resp = self.session.request(method, url, json=body, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise NodeTimeout(
                f"{self.base_url} did not answer within {self.timeout}s", url=self.base_url
            ) from None
        except requests.RequestException as exc:
            raise NodeUnreachable(
                f"{self.base_url} is unreachable ({type(exc).__name__}): is the node running?",
                url=self.base_url,
            ) from None
        return json_answer(resp, url)

    def close(self) -> None:
        """Release the connection pool."""
        self.session.close()

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
