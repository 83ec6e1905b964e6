"""Tests of crk.optimize (a package, so its conftest does not shadow tests/conftest.py)."""
