"""Turns the `--storage` setting into a backend. The one place that knows every backend."""

from __future__ import annotations

from storage import DataStore, LocalStore

from .settings import Settings


def open_store(settings: Settings) -> DataStore:
    # parse_storage already refused every scheme but file://
    return LocalStore(settings.storage_path)
