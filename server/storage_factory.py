"""Turns the `--storage` setting into a backend. The one place that knows every backend."""

from __future__ import annotations

from storage import DataStore, LocalStore

from .settings import Settings


def open_store(settings: Settings) -> DataStore:
    location = settings.s3_location
    if location is None:
        return LocalStore(settings.storage_path, fsync=settings.fsync, checksum=settings.hashes)
    bucket, prefix = location
    # Imported here, not at the top: boto3 and its service models cost a local-disk
    # server about 8 MiB of RSS (peak 58 -> 66 MiB in `make bench`) for nothing.
    from storage.s3 import S3Store

    return S3Store(
        bucket,
        prefix,
        endpoint_url=settings.s3_endpoint_url,
        part_size=settings.s3_part_size,
        concurrency=settings.s3_concurrency,
        memory_limit=settings.s3_memory_part_size,
        temp_dir=settings.temp_dir,
        temp_cap=settings.temp_cap,
        max_length=settings.max_upload_size or None,
        lock_ttl=settings.s3_lock_ttl,
        abandon_after=settings.upload_ttl,
        checksum=settings.hashes,
    )
