"""A sha256 that remembers how many bytes it has seen.

Python cannot serialise a hash's state, so a store can only hash "while streaming" as long as
one process sees every byte in order. The position lets it tell when that chain broke (a
restart, another process appending) and fall back to hashing the stored bytes at finish.
"""

import hashlib
import hmac
import zlib


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


class _Crc32:
    """zlib's CRC-32 behind the hashlib interface, digest big-endian as tus clients send it."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class ChunkVerifier:
    """Checks one appended chunk against the digest a client announced (tus checksum)."""

    __slots__ = ("_hash", "expected")

    def __init__(self, algorithm: str, expected: bytes) -> None:
        self._hash: _Crc32 | hashlib._Hash = (
            _Crc32() if algorithm == "crc32" else hashlib.new(algorithm)
        )
        self.expected = expected

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def matches(self) -> bool:
        return hmac.compare_digest(self._hash.digest(), self.expected)


class WholeOrNothing(ChunkVerifier):
    """A verifier with nothing to check, for its all-or-nothing append: a body that does
    not arrive whole leaves none of its bytes (a form POST filling a direct upload, which
    the client may then retry from the start)."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def update(self, data: bytes | memoryview) -> None:
        pass

    def matches(self) -> bool:
        return True
