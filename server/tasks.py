"""Storage work that must not be abandoned half-way when a handler is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


_detached: set[asyncio.Task[Any]] = set()


def detach(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task whose failure nobody needs to collect if its awaiter has gone."""
    task = asyncio.ensure_future(coro)
    _detached.add(task)
    task.add_done_callback(_detached.discard)
    task.add_done_callback(_retrieve)
    return task


def detached() -> list[asyncio.Task[Any]]:
    """The detached work still running: at a shutdown's deadline it is cancelled too, so
    its own clean-up runs while the store is still open (server/drain.py)."""
    return list(_detached)


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
