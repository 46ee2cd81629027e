"""Integration tests: components against real back ends."""
