"""A sha256 that remembers how many bytes it has seen.

Python cannot serialise a hash's state, so a store can only hash "while streaming" as long as
one process sees every byte in order. The position lets it tell when that chain broke (a
restart, another process appending) and fall back to hashing the stored bytes at finish.
"""

import hashlib


class StreamHasher:
    __slots__ = ("_hash", "position")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.position = 0

    def update(self, data: bytes | memoryview) -> None:
        # hashlib releases the GIL for buffers over 2 KiB, so this runs in parallel with the
        # event loop when called from a worker thread.
        self._hash.update(data)
        self.position += len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
