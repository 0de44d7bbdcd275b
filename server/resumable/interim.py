"""`104 Upload Resumption Supported` interim responses, written before the final one.

aiohttp has no API for 1xx responses. Its own `Expect: 100-continue` handler writes the
bytes to the connection before the response is prepared, and so does this: an interim head
is complete in itself, and the final response follows it on the same connection.

Only HTTP/1.1 carries them (HTTP/1.0 knows no 1xx), and `--no-104` turns them off for
proxies that cannot pass an unknown 1xx (nginx desynchronises on one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from aiohttp import HttpVersion11, web

from storage import DurableProgress, Upload

from ..context import settings_of
from ..protocol import rufh

# Progress 104s at most this often (the "at most every second").
PROGRESS_INTERVAL = 1.0
# A client that reads no responses while it sends must not grow our write buffer: progress
# 104s are skipped while this much of what we wrote is still unsent.
MAX_UNSENT = 16 * 1024


def can_send(request: web.Request) -> bool:
    return request.version >= HttpVersion11 and not settings_of(request).no_104


def send(request: web.Request, interop: rufh.Interop, headers: Mapping[str, str]) -> bool:
    """Write one 104 now, if this request may have one; returns whether it went out."""
    transport = request.transport
    if not can_send(request) or transport is None or transport.is_closing():
        return False
    version = {"Upload-Draft-Interop-Version": str(interop.version)}
    transport.write(rufh.interim({**headers, **version}))
    return True


@contextlib.asynccontextmanager
async def progress(
    request: web.Request, interop: rufh.Interop, upload: Upload
) -> AsyncIterator[None]:
    """While the body flows, a 104 with `Upload-Offset` each second the offset moved.

    A response's `Upload-Offset` promises that those bytes need not be sent again, so the
    figure is what would survive the process dying now (DurableProgress), not what has
    arrived. A store that cannot say sends no progress 104s."""
    if not (interop.reports_progress and can_send(request) and isinstance(upload, DurableProgress)):
        yield
        return
    durable = upload

    async def tick() -> None:
        said = durable.durable_offset()
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            now = durable.durable_offset()
            if now > said and transport.get_write_buffer_size() < MAX_UNSENT:
                said = now
                send(request, interop, {"Upload-Offset": str(now)})

    ticker = asyncio.ensure_future(tick())
    try:
        yield
    finally:
        ticker.cancel()  # not awaited: a cancellation of our own task must not be absorbed
