"""What the direct-upload backends share: the delegation of the DirectStore methods to
each backend's own worker (S3Direct, LocalDirect), and the check of a completion's parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .base import DirectStore, StoredPart, Upload, UploadInfo, UploadSpec
from .errors import BadParts


class DelegatesDirect:
    """Mixed into a store whose `direct` attribute does the DirectStore work."""

    direct: DirectStore

    async def create_direct(self, spec: UploadSpec, kind: str) -> Upload:
        return await self.direct.create_direct(spec, kind)

    def direct_target(self, upload: Upload) -> tuple[str, str, str | None]:
        return self.direct.direct_target(upload)

    async def list_direct_parts(self, upload: Upload) -> list[StoredPart]:
        return await self.direct.list_direct_parts(upload)

    async def complete_direct(
        self, upload: Upload, parts: Sequence[tuple[int, str]], limit: int
    ) -> UploadInfo:
        return await self.direct.complete_direct(upload, parts, limit)

    async def recognise_direct(self, upload: Upload, limit: int) -> bool:
        return await self.direct.recognise_direct(upload, limit)

    async def hash_direct(self, upload: Upload) -> str:
        return await self.direct.hash_direct(upload)


def named_parts(
    parts: Sequence[tuple[int, str]], stored: Mapping[int, StoredPart]
) -> tuple[list[tuple[int, str]], int]:
    """The (number, etag) parts a completion names, sorted, and their total size; BadParts
    unless each is stored with that ETag (quoted or not: S3 accepts both, Uppy strips
    the quotes)."""
    named = sorted(set(parts))
    wrong = [
        n for n, etag in named if n not in stored or stored[n].etag.strip('"') != etag.strip('"')
    ]
    if wrong or not named:
        raise BadParts(f"parts {wrong[:10] or 'none'} were never uploaded as named")
    return named, sum(stored[n].size for n, _ in named)
