"""Hooks: Python callables for embedders, and an optional webhook URL for everyone else.

- `pre_create(spec, request)` may refuse an upload by raising HookRejected(status, message).
- `post_finish(info)` runs once an upload is complete, before the client is answered.
- `--hook-url` receives a JSON POST for `created`, `finished` and `terminated`. Delivery
  happens in the background from a bounded queue, with retries and exponential backoff, so
  a slow or dead hook never holds up an upload (when the queue is full, events are dropped
  and logged rather than buffered without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from storage import UploadInfo, UploadSpec

from ..ops import metrics
from ..ops.middleware import CURRENT_REQUEST_ID

log = logging.getLogger("spigot.hooks")

PreCreate = Callable[[UploadSpec, web.Request], Awaitable[None] | None]
PostFinish = Callable[[UploadInfo], Awaitable[None] | None]


class HookRejected(Exception):
    """Raised by a pre-create hook to refuse an upload with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Hooks:
    pre_create: PreCreate | None = None
    post_finish: PostFinish | None = None


async def call(hook: Callable[..., Any] | None, *args: Any) -> None:
    if hook is not None:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result


class WebHook:
    QUEUE = 1000
    ATTEMPTS = 6
    BACKOFF = 0.5  # seconds, doubled on every retry
    TIMEOUT = 10.0

    def __init__(self, url: str) -> None:
        self.url = url
        # each event with the id of the request it came from, sent as X-Request-ID
        self._queue: asyncio.Queue[tuple[dict[str, Any], str | None]] = asyncio.Queue(self.QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def send(self, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((payload, CURRENT_REQUEST_ID.get()))
        except asyncio.QueueFull:
            log.warning("hook queue full; dropped %s event", payload.get("event"))

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.TIMEOUT))
        self._task = asyncio.create_task(self._deliver_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def _deliver_forever(self) -> None:
        while True:
            payload, request_id = await self._queue.get()
            await self._deliver(payload, request_id)

    async def _deliver(self, payload: dict[str, Any], request_id: str | None = None) -> None:
        assert self._session is not None
        delay = self.BACKOFF
        headers = {"X-Request-ID": request_id} if request_id else {}
        for attempt in range(1, self.ATTEMPTS + 1):
            metrics.HOOK_CALLS.labels("webhook").inc()
            try:
                async with self._session.post(self.url, json=payload, headers=headers) as resp:
                    if resp.status < 300:
                        return
                    reason = f"status {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            metrics.HOOK_FAILURES.labels("webhook").inc()
            if attempt < self.ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        log.warning(
            "hook gave up on %s event after %d attempts (%s)",
            payload.get("event"),
            self.ATTEMPTS,
            reason,
        )
