"""The topology file: which nodes make up the hierarchy, their roles, prefixes and ports."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from idcore.identifier import validate_prefix

Role = Literal["primary", "backup", "secondary", "enterprise"]
TOP_LEVEL_ROLES = ("primary", "backup")


class NodeSpec(BaseModel):
    """One node of the hierarchy."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    role: Role
    prefix: str
    port: int = Field(ge=1, le=65535)
    host: str = "127.0.0.1"
    title: str = ""

    @property
    def url(self) -> str:
        """Base URL the node listens on."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_top_level(self) -> bool:
        """True for the primary and backup top-level nodes."""
        return self.role in TOP_LEVEL_ROLES

    @model_validator(mode="after")
    def _prefix_ok(self) -> NodeSpec:
        validate_prefix(self.prefix)
        return self


class Topology(BaseModel):
    """The whole hierarchy."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[NodeSpec]

    @model_validator(mode="after")
    def _unique(self) -> Topology:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        ports = [(n.host, n.port) for n in self.nodes]
        if len(set(ports)) != len(ports):
            raise ValueError("node host:port pairs must be unique")
        return self

    def node(self, name: str) -> NodeSpec:
        """The node of this name."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise KeyError(f"no node {name!r} in the topology: known {[n.name for n in self.nodes]}")

    @property
    def top_level(self) -> list[NodeSpec]:
        """Top-level nodes, primary first."""
        return sorted((n for n in self.nodes if n.is_top_level), key=lambda n: n.role != "primary")

    @property
    def secondaries(self) -> list[NodeSpec]:
        """Secondary nodes in file order."""
        return [n for n in self.nodes if n.role == "secondary"]

    def with_ports(self, ports: dict[str, int]) -> Topology:
        """A copy with some nodes moved to other ports (tests use free ports)."""
        nodes = [n.model_copy(update={"port": ports.get(n.name, n.port)}) for n in self.nodes]
        return Topology(nodes=nodes)

    def dumps(self) -> str:
        """Serialise as TOML-compatible JSON for child processes."""
        return self.model_dump_json()


def load_topology(path: str | Path | None = None) -> Topology:
    """Read a topology file (TOML or JSON); the packaged default when no path is given."""
    if path is None:
        text = resources.files("idcore").joinpath("topology.toml").read_text("utf-8")
        return Topology.model_validate(tomllib.loads(text))
    p = Path(path)
    text = p.read_text("utf-8")
    if p.suffix == ".json" or text.lstrip().startswith("{"):
        return Topology.model_validate_json(text)
    return Topology.model_validate(tomllib.loads(text))
