"""The S3 backend (AWS, MinIO, R2, Ceph, moto): see store.py, and layout.py for the keys."""

from .store import S3Store, S3Upload

__all__ = ["S3Store", "S3Upload"]
