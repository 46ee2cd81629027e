"""Secondary node: one industry's identifier service (Handle REST API)."""

from secondary_nodes.app import create_app

__all__ = ["create_app"]
