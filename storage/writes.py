"""Writing into a file's page cache in pieces of at most 64 KiB per system call.

One write of a megabyte asks the filesystem for large folios (ext4 has them since Linux
6.x), and on the machine bench/RESULTS.md was measured on (a VM, kernel 6.18) filling
them cost many times what small pages do: 512 MiB written in 1 MiB pwrites took 1.9-3.6
CPU-s per GiB on ext4, in 64 KiB pwrites 0.26-0.30, and a 512 MiB upload to disk went
from 223 to 459 MiB/s with the change. Most likely the large allocations come from memory
the host has taken back, faulted in again on first touch. tmpfs, with small pages either
way, measured the same at any size. The pieces cost 16 system calls per MiB, about 0.02
CPU-s per GiB.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

WRITE_PIECE = 64 << 10


def pwritten(fd: int, data: bytes | memoryview, position: int) -> Iterator[memoryview]:
    """Write `data` at `position`, yielding each piece once it is in the file: a caller
    that counts what it is given has the exact count when a write then fails."""
    rest = memoryview(data)
    while rest:
        n = os.pwrite(fd, rest[:WRITE_PIECE], position)
        yield rest[:n]
        rest = rest[n:]
        position += n


def append_all(fd: int, chunks: Iterable[bytes | memoryview]) -> int:
    """Write the chunks at the file's position (an O_APPEND descriptor); return the count."""
    total = 0
    for chunk in chunks:
        rest = memoryview(chunk)
        while rest:
            n = os.write(fd, rest[:WRITE_PIECE])
            rest = rest[n:]
            total += n
    return total
