"""Unit tests: one module at a time, no servers."""
