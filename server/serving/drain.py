"""Graceful shutdown that lets uploads finish.

aiohttp's own shutdown stops reading every connection at once (a closing protocol drops
the bytes that arrive: aio-libs/aiohttp#2298), so an upload in flight could never finish
in its grace period. Here the listening socket is closed first and requests in flight are
counted by a middleware; they get until the deadline, still reading their bodies, and
those left then are cancelled, which removes a one-shot upload and keeps what a PATCH
stored. Only then does aiohttp's shutdown run, with nothing left for it to cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..context import LIFECYCLE
from ..tasks import detached


class Drain:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self._idle.clear()
        try:
            response: web.StreamResponse = await handler(request)
            if self.draining:
                response.force_close()  # no keep-alive on the way out
            return response
        finally:
            self._running.discard(task)
            if not self._running:
                self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def drain(self, app: web.Application, within: float, grace: float = 5.0) -> int:
        """Wait up to `within` seconds for requests in flight, then cancel the rest and give their
        clean-up up to `grace`. Event streams are told to end first. Returns how many were
        cancelled."""
        self.draining = True
        app[LIFECYCLE].events.close()
        deadline = time.monotonic() + within
        while self._running and (left := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    await self._idle.wait()
            except TimeoutError:
                break
        cut = list(self._running)
        doomed = [*cut, *detached()]  # a handler's shielded work (server/tasks.py) too
        for task in doomed:
            task.cancel()
        if doomed:
            await asyncio.wait(doomed, timeout=grace)
        return len(cut)


DRAIN = web.AppKey("drain", Drain)
