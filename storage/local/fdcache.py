"""Reads of finished files that can be served on the event loop without ever blocking it.

Small range requests are dominated by the cost of handing work to a thread and getting the
GIL back, not by the bytes (4 KiB ranges went from 722 to 1,809 req/s by cutting hand-offs
from four to one; see bench/RESULTS.md). Linux's `preadv(..., RWF_NOWAIT)` reads only what
is already in the page cache and answers EAGAIN instead of waiting for the disk, so a warm
read can run on the loop and a cold one still goes to the thread pool. The descriptors are
kept in a small LRU, like nginx's open_file_cache, because opening a file is itself a
filesystem call that could block.

Only this loop-side path uses cached descriptors: a thread never touches one, so closing a
descriptor on eviction can never pull it out from under a concurrent read.

tmpfs cannot do RWF_NOWAIT (EOPNOTSUPP, Linux 6.18), and every small read went to the pool:
4 KiB ranges ran at about 4,900 req/s there against 8,600 on disk. Its pages are memory, so
a plain read of them does not wait for a disk either (swap aside), and on a memory-backed
store the loop reads without the flag.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

NOWAIT = getattr(os, "RWF_NOWAIT", None)
MAX_OPEN = 256
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes a space in a path as \040


def filesystem_type(mountinfo: str, path: str) -> str | None:
    """The type of the filesystem `path` (absolute, symlinks resolved) lives on, from the
    text of /proc/self/mountinfo: the deepest mount point above it, and of mounts stacked on
    one point the last, which hides the others."""
    found, deepest = None, -1
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, kind = head.split(), tail.split()
        if not sep or len(fields) < 5 or not kind:
            continue
        point = _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= deepest:
            found, deepest = kind[0], len(point)
    return found


def memory_backed(path: Path) -> bool:
    """Whether `path` is on tmpfs or ramfs, where reading a file never waits for a disk."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:  # not Linux, or no /proc: assume a disk
        return False
    return filesystem_type(mountinfo, os.path.realpath(path)) in MEMORY_FILESYSTEMS


class OpenFiles:
    def __init__(self, max_open: int = MAX_OPEN, *, in_memory: bool = False) -> None:
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._max = max_open
        # In memory, a plain read never blocks on a disk: no RWF_NOWAIT needed (or possible).
        self._flags = 0 if in_memory else NOWAIT
        self.enabled = self._flags is not None

    def adopt(self, key: str, fd: int) -> None:
        """Keep `fd` (opened read-only in a thread) for later non-blocking reads."""
        if not self.enabled or key in self._fds:
            os.close(fd)
            return
        self._fds[key] = fd
        if len(self._fds) > self._max:
            _, old = self._fds.popitem(last=False)
            os.close(old)

    def has(self, key: str) -> bool:
        return key in self._fds

    def try_read(self, key: str, offset: int, size: int) -> bytes | None:
        """`size` bytes at `offset` if all are in the page cache; None if that would block.

        Raises FileNotFoundError if the file was unlinked meanwhile (by another process):
        the open descriptor would otherwise keep serving a deleted file.
        """
        fd = self._fds.get(key)
        if fd is None or self._flags is None:
            return None
        if os.fstat(fd).st_nlink == 0:  # metadata of an open inode: no disk access
            self.forget(key)
            raise FileNotFoundError(key)
        buf = bytearray(size)
        try:
            n = os.preadv(fd, [buf], offset, self._flags)
        except BlockingIOError:
            return None
        except OSError:  # EOPNOTSUPP and the like: this filesystem cannot do it
            self.enabled = False
            self.close()
            return None
        if n != size:
            return None  # partly cached, or short: let the thread path decide
        self._fds.move_to_end(key)
        return bytes(buf)

    def forget(self, key: str) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])
