"""Socket-level watch for sends the event loop does not see.

A response written through the transport is watched by the connection guard (a full send
buffer that never drains, server/serving/guard.py). `loop.sendfile()` bypasses the
transport: the kernel sends straight from the file, and a reader that takes nothing
would hold the connection forever. `stalled_sends` watches the socket's unsent bytes
(TIOCOUTQ) instead and aborts the connection when they have not moved for `limit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator

POLL = 1.0


def unsent(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])


@contextlib.asynccontextmanager
async def stalled_sends(
    transport: asyncio.BaseTransport | None, limit: float
) -> AsyncIterator[None]:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if not limit or sock is None or not isinstance(transport, asyncio.WriteTransport):
        yield
        return

    async def watch() -> None:
        last, since = -1, time.monotonic()
        while True:
            await asyncio.sleep(min(POLL, limit / 2))
            try:
                now = unsent(sock.fileno())
            except (OSError, ValueError):
                return  # closed meanwhile
            if now == 0 or now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= limit:
                # Shut the socket down under sendfile, which then fails like any send to a
                # dead peer (aborting the transport mid-sendfile trips asyncio itself).
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
