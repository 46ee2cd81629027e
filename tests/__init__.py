"""Test suite of the identifier resolution emulator."""
