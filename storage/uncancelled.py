"""Awaiting work in a thread to its end, even when the awaiting task is cancelled.

A thread cannot be stopped half-way. If the task that handed it a write were to go on at
once after a cancellation (as `asyncio.shield` alone lets it), it could close the file
descriptor the thread is still writing, whose number the next `open` then reuses: bytes of
one upload would land in another's file. So the task waits the work out, and only then lets
the cancellation through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def to_the_end(work: Awaitable[T]) -> T:
    """The result of `work`; a cancellation that arrives meanwhile is raised after it ends."""
    future = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():  # the work itself was cancelled, or ended as we were
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
