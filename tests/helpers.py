"""Importable test helpers (conftest's fixtures are not importable by name)."""

from conftest import assert_trees_close, host  # noqa: F401

