"""Node configuration: pydantic-settings with the IDR_ environment prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from idcore.store import AppendFsync
from idcore.topology import NodeSpec, Role, Topology, load_topology
from idcore.values import MAX_JSON_DEPTH, MAX_VALUE_BYTES, MAX_VALUES_PER_RECORD


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
    keys_dir: Path | None = Field(
        None,
        description="where the node's signing keys live; <data_dir>/keys if unset (with the "
        "Redis store too: keys are files, never in Redis)",
    )
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
    redis_appendfsync: AppendFsync = Field(
        "everysec",
        description="Redis AOF policy the node makes sure of: everysec, always (fsync every "
        "write before it is acknowledged) or server (leave the server's settings alone)",
    )
    replication_secret: SecretStr = Field(
        SecretStr("demo-replication-secret"),
        description="bearer token of the replication feed (demo default: change it)",
    )
    replication_wait: float = Field(
        5.0, ge=0, le=30, description="seconds a backup's long-poll waits for new changes"
    )
    replication_batch: int = Field(500, ge=1, le=5000, description="changes per feed page")
    replication_sync_timeout: float = Field(
        2.0,
        ge=0,
        description="seconds a primary waits for a connected backup to hold a write before "
        "acknowledging it (semi-synchronous); 0: asynchronous",
    )
    peer_check_interval: float = Field(
        5.0, gt=0, description="seconds between a primary's checks for a promoted peer"
    )
    access_log: bool = Field(True, description="one JSON line per request on stdout")
    # Limits of a write (README "Rights and limits"); each refusal names its limit.
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="largest request body (bytes) except a batch's"
    )
    max_values_per_record: int = Field(
        MAX_VALUES_PER_RECORD, ge=1, description="values one record may hold after a write"
    )
    max_value_bytes: int = Field(
        MAX_VALUE_BYTES,
        ge=256,
        description="UTF-8 bytes of one value's data (the string, or compact JSON of the "
        "structured formats admin, vlist, site, key)",
    )
    max_json_depth: int = Field(
        MAX_JSON_DEPTH, ge=4, le=200, description="nesting of arrays/objects in a JSON body"
    )
    auth_max_failures: int = Field(
        10,
        ge=1,
        description="failed logins from one client address within the window "
        "before it is answered 503 (responseCode 3) with Retry-After",
    )
    auth_failure_window: float = Field(
        60.0, gt=0, description="seconds a failed login counts against its client address"
    )
    bench_endpoints: bool = Field(
        False, description="serve the benchmark routes under /_emulator/bench (bench/ sets it)"
    )

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

    def signing_keys_dir(self) -> Path:
        """The directory of every node's key ring (idcore.keys)."""
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"

    def secret(self) -> str:
        """This node's admin secret."""
        if self.admin_secret is not None:
            return self.admin_secret.get_secret_value()
        return demo_admin_secret(self.node)

    def url(self, spec: NodeSpec) -> str:
        """The public base URL of this node."""
        return (self.public_url or spec.url).rstrip("/")
