"""Storage work that must not be abandoned half-way when a handler is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def detach(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task whose failure nobody needs to collect if its awaiter has gone."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_retrieve)
    return task


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` in its own task, which goes on even if the caller is cancelled.

    aiohttp cancels a handler whose client disconnected when `handler_cancellation` is on
    (its test server always does). Cancelled inside a thread hand-off, a store call would
    still create files, with no one left to delete them. Shielded, the work instead sees the
    request body fail (aiohttp sets the connection error on it) and runs its own cleanup.
    """
    return await asyncio.shield(detach(coro))


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Once the caller is gone nobody awaits the task; its failure is expected, not news.
    if not task.cancelled():
        task.exception()
