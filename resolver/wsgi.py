"""WSGI entry point: `gunicorn resolver.wsgi:app` (settings from IDR_* variables)."""

from resolver import replication_api
from resolver.app import create_app

app = create_app()
# Under `gunicorn --preload` this runs once, in the master; without it, once per worker
# (several followers of one store are safe: changes apply idempotently and in order).
replication_api.start(app)
