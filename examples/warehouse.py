"""A stand-in for your application: a warehouse scanner that looks products up.

It talks plain HTTP to the national top-level node, the way your own code would. Tests
hand it the emulator's session; in production it gets a `requests.Session()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests


@dataclass
class Item:
    """What the scanner shows for a code."""

    code: str
    status: str  # "ok", "unknown" or "unavailable"
    name: str | None = None
    inputs: tuple[str, ...] = ()


class Warehouse:
    """Looks scanned codes up through the top-level node."""

    def __init__(self, top_level: str, session: requests.Session | None = None) -> None:
        self.top_level = top_level.rstrip("/")
        self.session = session or requests.Session()

    def lookup(self, code: str) -> Item:
        """One scanned code: `hdl:` prefixes are stripped, as scanners deliver them."""
        handle = code.removeprefix("hdl:").strip()
        try:
            resp = self.session.get(f"{self.top_level}/api/handles/{handle}", timeout=3)
        except requests.RequestException:
            return Item(handle, "unavailable")
        if resp.status_code == 404:
            return Item(handle, "unknown")
        if resp.status_code != 200:
            return Item(handle, "unavailable")
        values = resp.json()["values"]
        name = next((v["data"]["value"] for v in values if v["type"] == "name"), None)
        inputs = tuple(v["data"]["value"] for v in values if v["type"] == "TRACE.INPUT")
        return Item(handle, "ok", name, inputs)
