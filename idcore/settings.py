"""Node configuration: pydantic-settings with the IDR_ environment prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from idcore.topology import NodeSpec, Role, Topology, load_topology


def demo_admin_secret(node: str) -> str:
    """The demo secret of a node's admin handle (demo data: change it for anything real)."""
    return f"demo-{node}-admin"


class NodeSettings(BaseSettings):
    """Everything one node process needs; tests pass an instance to create_app."""

    model_config = SettingsConfigDict(env_prefix="IDR_", extra="ignore")

    node: str = Field("furniture", description="name of this node in the topology")
    topology: Path | None = Field(None, description="topology file; the packaged default if unset")
    role: Role | None = None
    prefix: str | None = None
    host: str | None = None
    port: int | None = None
    public_url: str | None = Field(None, description="base URL users reach this node at")
    data_dir: Path = Path("data")
    store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str | None = None
    admin_secret: SecretStr | None = None
    seed: Literal["demo", "none"] = "demo"
    seed_number: int = 2024
    recursion: bool = True
    negative_ttl: float = Field(5.0, ge=0, description="seconds a 'not found' is cached")
    cache_size: int = Field(100_000, ge=0)
    upstream_timeout: float = Field(3.0, gt=0)
    workers: int = Field(1, ge=1)
    threads: int = Field(16, ge=1)

    def load_topology(self) -> Topology:
        """The topology this node belongs to."""
        return load_topology(self.topology)

    def spec(self, topology: Topology | None = None) -> NodeSpec:
        """This node's entry, with any overrides from the settings applied."""
        base = (topology or self.load_topology()).node(self.node)
        update: dict[str, Any] = {}
        for name in ("role", "prefix", "host", "port"):
            value = getattr(self, name)
            if value is not None:
                update[name] = value
        return base.model_copy(update=update) if update else base

    def secret(self) -> str:
        """This node's admin secret."""
        if self.admin_secret is not None:
            return self.admin_secret.get_secret_value()
        return demo_admin_secret(self.node)

    def url(self, spec: NodeSpec) -> str:
        """The public base URL of this node."""
        return (self.public_url or spec.url).rstrip("/")
