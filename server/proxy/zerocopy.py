"""Relaying bytes between two plain TCP sockets with splice(2), without copying them.

A relay in userspace copies every byte twice: from the upstream's socket into a Python
bytes object, and from there into the client's socket. On loopback that caps it at about
0.6x of nginx sending the file with sendfile, and nginx's own proxy_pass does little better
(bench/RESULTS.md). splice moves page references from a socket into a pipe and from the pipe
into the other socket, so the bytes never enter the process.

The pipe is the window: at most its capacity is in flight, and nothing more is taken from
the upstream until the client has taken what is in it, so a slow client slows the upstream
exactly as with the copying relay, and memory does not grow. TLS bytes must be decrypted in
the process, so this applies only when neither side is TLS; callers fall back otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..netio import duplicate, pipe

SUPPORTED = sys.platform == "linux" and hasattr(os, "splice")
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


class Truncated(Exception):
    """The source closed before it had sent the bytes it promised."""


def plain_socket(transport: asyncio.BaseTransport | None) -> int | None:
    """The file descriptor behind a transport, if it is plain TCP, which splice can serve."""
    if not SUPPORTED or transport is None or transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return None
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return int(sock.fileno())


class Splice:
    """A splice from socket `src` to socket `dst`, with its own descriptors.

    Both sockets stay owned by their transports: they are duplicated here, so the event loop
    can watch them without clashing with the transports' own registrations, and a pipe of
    about `window` bytes joins them. All are taken when this is made, so a process out of
    descriptors (OSError) can still choose to copy instead, before anything is committed.
    """

    def __init__(self, src: int, dst: int, window: int) -> None:
        with contextlib.ExitStack() as opened:
            self._source = duplicate(opened, src)
            self._sink = duplicate(opened, dst)
            self._pipe_out, self._pipe_in = pipe(opened, window)
            self._close = opened.pop_all().close

    def __enter__(self) -> Splice:
        return self

    def __exit__(self, *_: object) -> None:
        self._close()

    async def flushed(self, transport: asyncio.WriteTransport) -> None:
        """Wait until `transport` (the destination's) has handed all it buffered to the
        socket, so that bytes spliced in next cannot overtake them."""
        await flushed(transport, self._sink.fileno())

    async def move(self, count: int, idle: float) -> None:
        """Move exactly `count` bytes. Raises Truncated if the source ends early,
        TimeoutError if it sends nothing for `idle` seconds, and OSError when either side
        fails (a client that hung up gives EPIPE or ECONNRESET)."""
        loop = asyncio.get_running_loop()
        src, dst = self._source.fileno(), self._sink.fileno()
        pipe_out, pipe_in = self._pipe_out, self._pipe_in
        piped = 0
        held = False  # bytes sent with SPLICE_F_MORE that the kernel may be holding back
        while count or piped:
            if count:
                try:
                    moved = os.splice(src, pipe_in, count, flags=_FLAGS)
                except BlockingIOError:
                    # Nothing to read, or the pipe is full. Only with an empty pipe is it
                    # surely the socket, and only then is waiting on the socket not a spin.
                    if not piped:
                        if held:
                            # Setting TCP_NODELAY sends pending frames at once, even when
                            # it is already set (as aiohttp sets it).
                            self._sink.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                            held = False
                        await ready(loop.add_reader, loop.remove_reader, src, idle)
                        continue
                else:
                    if moved == 0:
                        raise Truncated(f"the source ended {count} bytes short")
                    count -= moved
                    piped += moved
            if piped:
                # "More is coming" lets the kernel fill whole segments instead of pushing
                # each piece out at once; it measured 5-10% more throughput on loopback.
                more = os.SPLICE_F_MORE if count else 0
                try:
                    piped -= os.splice(pipe_out, dst, piped, flags=_FLAGS | more)
                except BlockingIOError:
                    await ready(loop.add_writer, loop.remove_writer, dst, None)
                else:
                    held = bool(more)


async def flushed(transport: asyncio.WriteTransport, fd: int) -> None:
    """Wait until `transport` has handed all it buffered to its socket (`fd`, a duplicate),
    so that bytes sent past it next cannot overtake them."""
    loop = asyncio.get_running_loop()
    while transport.get_write_buffer_size():
        if transport.is_closing():
            raise ConnectionResetError("the connection closed")
        # The transport's own writer is woken in the same pass as ours, and runs first.
        await ready(loop.add_writer, loop.remove_writer, fd, None)


async def send_file(
    transport: asyncio.WriteTransport, file_fd: int, offset: int, count: int
) -> None:
    """`loop.sendfile()` for a loop without one (uvloop): once the transport has flushed
    its buffer, sendfile(2) from a duplicate of its socket, the loop waiting whenever the
    socket is full. The caller watches for a client that stops reading (netio.stalled_sends)
    and must not write to the transport meanwhile. Raises Truncated if the file is short."""
    sock = plain_socket(transport)
    if sock is None:
        raise ConnectionResetError("the connection closed")
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as opened:
        dst = duplicate(opened, sock).fileno()
        await flushed(transport, dst)
        while count:
            try:
                sent = os.sendfile(dst, file_fd, offset, count)
            except BlockingIOError:
                await ready(loop.add_writer, loop.remove_writer, dst, None)
                continue
            if sent == 0:
                raise Truncated(f"the file ended {count} bytes short")
            offset += sent
            count -= sent


async def ready(
    add: Callable[..., Any], remove: Callable[[int], Any], fd: int, patience: float | None
) -> None:
    """Wait until the loop reports `fd` ready (`add`/`remove`: its reader or writer
    registration), for at most `patience` seconds (TimeoutError)."""
    waiter = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not waiter.done():  # the selector may report it again before we run
            waiter.set_result(None)

    add(fd, wake)
    try:
        async with asyncio.timeout(patience):
            await waiter
    finally:
        remove(fd)
