"""The local-disk backend: see store.py; direct.py holds the direct (presigned) uploads'
parts, fdcache.py the reads served on the event loop, locking.py the per-upload locks."""

from .store import LocalStore, LocalUpload

__all__ = ["LocalStore", "LocalUpload"]
