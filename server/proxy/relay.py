"""Moving a proxied body from the upstream's connection to the client's.

Three ways, the same contract: bytes go on as they arrive, at most a fixed window is in
flight, and a body that ends early or stalls raises one of RELAY_FAILURES, so the caller
can reset the client's connection instead of ending a truncated body cleanly. A client
that stops taking bytes for --network-timeout has its connection shut (netio.stalled_sends).

- Spliced (server/proxy/zerocopy.py): when both connections are plain TCP and the body is
  framed by Content-Length alone, so its bytes on the wire are the body itself. The bytes
  never enter the process.
- Decrypted (server/proxy/decrypted.py): the same framing from a TLS upstream. OpenSSL
  decrypts into one window, which is written straight to the client's socket.
- Copied: everything else (no Content-Length: chunked, or to the close), and all
  bodies with --proxy-no-splice, through aiohttp's reader, whose window pauses the upstream
  socket while the client drains.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import aiohttp
from aiohttp import web

from ..netio import stalled_sends
from ..settings import Settings
from . import decrypted, zerocopy
from .upstream import UPSTREAM_WINDOW

log = logging.getLogger("spigot.proxy")

# What a relay raises when the body cannot be delivered whole.
RELAY_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, OSError, zerocopy.Truncated)


async def relay_body(
    request: web.Request,
    resp: web.StreamResponse,
    upstream: aiohttp.ClientResponse,
    settings: Settings,
) -> int:
    """Relay the upstream's body; return how many bytes were sent."""
    async with stalled_sends(request.transport, settings.network_timeout):
        splice = open_splice(request, upstream, settings)
        if splice is not None:
            with splice:
                return await relay_spliced(
                    request, resp, upstream, splice, settings.proxy_idle_timeout
                )
        if not settings.proxy_no_splice and decrypted.usable(request, upstream):
            return await decrypted.relay_decrypted(
                request, resp, upstream, UPSTREAM_WINDOW, settings.proxy_idle_timeout
            )
        return await relay_copied(resp, upstream, settings.proxy_max_size)


async def relay_copied(resp: web.StreamResponse, upstream: aiohttp.ClientResponse, cap: int) -> int:
    sent = 0
    # iter_chunks hands over each buffered read as it is; iter_any would join them first.
    async for chunk, _ in upstream.content.iter_chunks():
        sent += len(chunk)
        if cap and sent > cap:
            raise ValueError(f"grew past --proxy-max-size after {sent} bytes")
        await resp.write(chunk)
    return sent


def open_splice(
    request: web.Request, upstream: aiohttp.ClientResponse, settings: Settings
) -> zerocopy.Splice | None:
    """A splice from the upstream's socket to the client's, if the body can take one.

    A known length also keeps --proxy-max-size: a longer one was refused before this.
    """
    if settings.proxy_no_splice or upstream.content_length is None:
        return None
    if "Transfer-Encoding" in upstream.headers or upstream.connection is None:
        return None
    if upstream.content.is_eof():
        return None  # the whole body is read already: nothing is left to splice
    src = zerocopy.plain_socket(upstream.connection.transport)
    dst = zerocopy.plain_socket(request.transport)
    if src is None or dst is None:
        return None
    try:
        return zerocopy.Splice(src, dst, UPSTREAM_WINDOW)
    except OSError as exc:  # out of descriptors, most likely: copying needs none
        log.warning("copying a proxied body instead of splicing it: %s", exc)
        return None


async def relay_spliced(
    request: web.Request,
    resp: web.StreamResponse,
    upstream: aiohttp.ClientResponse,
    splice: zerocopy.Splice,
    idle: float,
) -> int:
    """Send what aiohttp has already read of the body, then splice the rest."""
    assert upstream.connection is not None and upstream.content_length is not None
    # Typed for asyncio's transports; uvloop's have the same methods but are not instances.
    source = cast(asyncio.ReadTransport, upstream.connection.transport)
    sink = cast(asyncio.WriteTransport, request.transport)
    assert source is not None and sink is not None
    # Take what is buffered, then stop the transport reading, with no await in between:
    # from here on the rest of the body stays in the socket for splice to take. (Taking
    # from the buffer may resume the transport, but that delivers nothing before an await.)
    head = b"".join(iter(upstream.content.read_nowait, b""))
    remaining = upstream.content_length - len(head)
    if remaining:
        source.pause_reading()
    await resp.write(head)  # also sends the headers
    if not remaining:
        return len(head)  # all of it was read the ordinary way: the connection stays reusable
    try:
        await splice.flushed(sink)
        await splice.move(remaining, idle)
    finally:
        # aiohttp's parser never saw the spliced bytes, so this connection cannot be reused.
        upstream.close()
    return len(head) + remaining
