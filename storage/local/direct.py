"""Direct multipart uploads on local disk: the parts of `{id}` wait in `{id}.parts/`, one
file each, named `{number:05}-{md5}` (the md5 is the part's ETag, as on S3), and complete
joins them into `{id}` inside the kernel (copy_file_range: shared extents on btrfs and XFS,
never through this process). POST uploads need nothing here: their one body goes through
spigot as any one-shot body does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..base import StoredPart, Upload, UploadInfo, UploadSpec
from ..direct import named_parts
from ..errors import ChecksumMismatch, OverLimit

if TYPE_CHECKING:
    from .store import LocalStore

MAX_PARTS = 10_000


def _write_hashed(f: BinaryIO, hashed: hashlib._Hash, chunk: bytes) -> None:
    """In a pool thread: the MD5 with the write, both off the event loop."""
    hashed.update(chunk)
    f.write(chunk)


class LocalDirect:
    """The DirectStore capability of LocalStore, which delegates to this."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def parts_dir(self, upload_id: str) -> Path:
        return self.store.root / f"{upload_id}.parts"

    def direct_target(self, upload: Upload) -> tuple[str, str, str | None]:
        return "", upload.info.id, upload.info.backend.get("multipart")

    async def create_direct(self, spec: UploadSpec, kind: str) -> Upload:
        upload = await self.store.create(spec)
        info = upload.info
        info.direct = kind
        if kind == "multipart":
            info.backend["multipart"] = secrets.token_urlsafe(24)
        await self.store.run_blocking(self.store.write_info, info)
        return upload

    async def write_part(
        self, upload: Upload, number: int, chunks: AsyncIterable[bytes], md5: bytes | None = None
    ) -> StoredPart:
        """Store one part whole or not at all (a temp file renamed into place), replacing an
        earlier upload of the same number, unless its bytes are not the given `md5`."""
        if not 1 <= number <= MAX_PARTS:
            raise ValueError("part numbers are 1 to 10,000")
        store = self.store
        tmp = store.root / ".tmp" / f"{upload.info.id}.part.{secrets.token_hex(6)}"
        hashed = hashlib.md5(usedforsecurity=False)  # the ETag S3 would give; not for security
        f = await store.run_blocking(open, tmp, "wb")
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                await store.run_blocking(_write_hashed, f, hashed, chunk)
            await store.run_blocking(f.close)
            if md5 is not None and not hmac.compare_digest(hashed.digest(), md5):
                raise ChecksumMismatch(upload.info.id)
            etag = hashed.hexdigest()
            await store.run_blocking(self._place, upload.info.id, number, etag, tmp)
        finally:
            await store.run_blocking(f.close)
            await store.run_blocking(tmp.unlink, True)
        return StoredPart(number, f'"{etag}"', size)

    def _place(self, upload_id: str, number: int, etag: str, tmp: Path) -> None:
        where = self.parts_dir(upload_id)
        where.mkdir(exist_ok=True)
        for old in where.glob(f"{number:05}-*"):
            old.unlink(missing_ok=True)
        os.replace(tmp, where / f"{number:05}-{etag}")

    def _listed(self, upload_id: str) -> list[tuple[StoredPart, Path]]:
        where = self.parts_dir(upload_id)
        if not where.is_dir():
            return []
        found = []
        for path in sorted(where.iterdir()):
            number, _, etag = path.name.partition("-")
            if number.isdigit() and etag:
                found.append((StoredPart(int(number), f'"{etag}"', path.stat().st_size), path))
        return found

    async def list_direct_parts(self, upload: Upload) -> list[StoredPart]:
        listed = await self.store.run_blocking(self._listed, upload.info.id)
        return [part for part, _ in listed]

    async def complete_direct(
        self, upload: Upload, parts: Sequence[tuple[int, str]], limit: int
    ) -> UploadInfo:
        info = upload.info
        if info.is_complete:
            return info
        listed = {p.number: (p, path) for p, path in await self._listed_async(info.id)}
        named, total = named_parts(parts, {n: p for n, (p, _) in listed.items()})
        if total > limit:
            await upload.delete()
            raise OverLimit(total, limit)
        paths = [listed[n][1] for n, _ in named]
        from .store import _copy_files

        await self.store.run_blocking(_copy_files, paths, self.store.data_path(info.id))
        # S3's multipart ETag: the md5 of the parts' md5s, then their count.
        joined = b"".join(bytes.fromhex(listed[n][0].etag.strip('"')) for n, _ in named)
        info.etag = f'"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(named)}"'
        info.length = info.offset = total
        info.completed = time.time()
        info.expires = None
        await self.store.run_blocking(self.store.write_info, info)
        await self.store.run_blocking(shutil.rmtree, self.parts_dir(info.id), True)
        self.store.remember_finished(info)
        return info

    async def _listed_async(self, upload_id: str) -> list[tuple[StoredPart, Path]]:
        return await self.store.run_blocking(self._listed, upload_id)

    async def recognise_direct(self, upload: Upload, limit: int) -> bool:
        return upload.info.is_complete  # a POST's body came through spigot, which finished it

    async def hash_direct(self, upload: Upload) -> str:
        from .store import _hash_file

        info = upload.info
        info.sha256 = await self.store.run_blocking(_hash_file, self.store.data_path(info.id))
        await self.store.run_blocking(self.store.write_info, info)
        self.store.remember_finished(info)
        return info.sha256

    def remove_parts(self, upload_id: str) -> None:
        shutil.rmtree(self.parts_dir(upload_id), ignore_errors=True)
