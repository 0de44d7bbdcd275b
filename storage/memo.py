"""Per-process memory a backend keeps beside its durable state: both are only shortcuts.

- `Hashers`: the sha256 of an upload being written front to back by this process, so
  finishing it needs no second read. The chain breaks on a restart or when another process
  appends; the position check notices, and the backend hashes the stored bytes instead.
- `FinishedInfos`: a finished upload's info never changes and ids are never reused, so it
  can be cached and a download costs no metadata read. A deletion elsewhere is caught when
  the bytes turn out to be gone, which evicts the entry.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

from .base import UploadInfo
from .hashing import StreamHasher


class Hashers:
    def __init__(self) -> None:
        self._by_id: dict[str, StreamHasher] = {}

    def for_append(self, info: UploadInfo) -> StreamHasher | None:
        """The hasher to feed the bytes appended at `info.offset`, if the chain is whole
        (and the upload wants its sha256 at all)."""
        if not info.hashed:
            return None
        hasher = self._by_id.get(info.id)
        if hasher is None and info.offset == 0:
            hasher = self._by_id[info.id] = StreamHasher()
        if hasher is not None and hasher.position != info.offset:
            del self._by_id[info.id]  # someone else wrote meanwhile: rehash at finish
            return None
        return hasher

    def pop(self, upload_id: str) -> StreamHasher | None:
        return self._by_id.pop(upload_id, None)

    def digest_if_whole(self, upload_id: str, length: int) -> str | None:
        hasher = self._by_id.pop(upload_id, None)
        if hasher is not None and hasher.position == length:
            return hasher.hexdigest()
        return None


class FinishedInfos:
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._infos: OrderedDict[str, UploadInfo] = OrderedDict()

    def get(self, upload_id: str) -> UploadInfo | None:
        """Shared, not copied: nothing mutates a finished upload's info."""
        info = self._infos.get(upload_id)
        if info is not None:
            self._infos.move_to_end(upload_id)
        return info

    def remember(self, info: UploadInfo) -> None:
        self._infos[info.id] = dataclasses.replace(info)
        self._infos.move_to_end(info.id)
        if len(self._infos) > self._size:
            self._infos.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        self._infos.pop(upload_id, None)
