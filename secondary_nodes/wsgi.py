"""WSGI entry point: `gunicorn secondary_nodes.wsgi:app` (settings from IDR_* variables)."""

from secondary_nodes.app import create_app

app = create_app()
