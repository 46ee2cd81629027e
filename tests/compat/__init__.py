"""Compatibility tests against Handle System clients."""
