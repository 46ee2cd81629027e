"""Run one top-level node under gunicorn: `python -m resolver` (IDR_NODE names it)."""

from idcore.server import serve
from idcore.settings import NodeSettings
from resolver.app import create_app


def main() -> None:
    """Start the node named by IDR_NODE (default cq-top)."""
    settings = NodeSettings()
    spec = settings.spec()
    serve(
        create_app(settings),
        spec.host,
        spec.port,
        workers=settings.workers,
        threads=settings.threads,
        name=f"idr-{spec.name}",
    )


if __name__ == "__main__":
    main()
