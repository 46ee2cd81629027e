"""HS_SITE values: how a prefix's node is reached over HTTP."""

from __future__ import annotations

from typing import Any


def site_url(site_value: dict[str, Any]) -> str:
    """The HTTP base URL an HS_SITE value describes (baseUrl attribute, else address:port)."""
    site = site_value["data"]["value"]
    for attr in site.get("attributes", []):
        if attr.get("name") == "baseUrl":
            return str(attr["value"]).rstrip("/")
    server = site["servers"][0]
    port = next(
        (i["port"] for i in server.get("interfaces", []) if i.get("protocol") == "HTTP"), 80
    )
    return f"http://{server['address']}:{port}"
