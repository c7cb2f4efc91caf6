"""Errors raised by the storage package (it imports nothing of bot; the CLI reports these)."""

from __future__ import annotations


class StorageError(Exception):
    """The database cannot be reached or migrated."""
