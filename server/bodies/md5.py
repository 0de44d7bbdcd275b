"""A body checked against its `Content-MD5` as it streams, as S3 checks PutObject's.

spigot keeps a sha256 of every file, not an MD5, so a body that declares one is hashed here,
on its way to the store. The check is at the end of the stream: a mismatch fails the
stream itself, so the store keeps nothing a caller will not then remove (a one-shot upload
is deleted whole). The price of a body the client wants checked this way: it takes the
chunked path through aiohttp, not the socket-to-file move (server/bodies/direct.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterable, AsyncIterator

from ..errors import ApiError

# Below this a chunk is hashed on the event loop: a thread hand-off would cost more than
# the hash. Above it, hashlib releases the GIL, and the loop goes on with other requests.
OFF_LOOP = 64 << 10


def mismatch(got: str, expected: bytes) -> ApiError:
    return ApiError(
        400,
        "digest_mismatch",
        f"the body's MD5 is {got}, not the {expected.hex()} its Content-MD5 gives;"
        " nothing was kept",
    )


async def md5_checked(chunks: AsyncIterable[bytes], expected: bytes) -> AsyncIterator[bytes]:
    """`chunks` unchanged; at their end, ApiError(400, digest_mismatch) unless their MD5 is
    `expected`, before the consumer sees the stream end."""
    md5 = hashlib.md5(usedforsecurity=False)  # a checksum the client chose, not security
    async for chunk in chunks:
        if len(chunk) >= OFF_LOOP:
            await asyncio.to_thread(md5.update, chunk)
        else:
            md5.update(chunk)
        yield chunk
    if not hmac.compare_digest(md5.digest(), expected):
        raise mismatch(md5.hexdigest(), expected)
