"""Upload events for Server-Sent Events streams, in bounded memory.

Each upload has a topic: a small ring of its latest events, numbered 1, 2, 3... Readers do
not get queues of their own; they keep a cursor (the last id they saw) and read the ring.
A slow reader therefore costs nothing, and at worst skips intermediate `progress` events;
`complete`, `terminated` and `expired` end a topic, so they are always the last it holds.
`Last-Event-ID` is honoured by starting the cursor there.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

RING = 32  # events kept per upload for readers that reconnect
LINGER = 300.0  # seconds a finished topic is kept for late readers
TERMINAL = frozenset({"complete", "terminated", "expired"})
REMOVED = frozenset({"terminated", "expired"})  # after these, nothing more can happen


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


@dataclass
class Topic:
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=RING))
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last_id: int = 0
    ended_at: float | None = None


class UploadEvents:
    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}
        self.closing = False

    def close(self) -> None:
        """Shutting down: every follower ends now, rather than holding the drain open."""
        self.closing = True
        for topic in self._topics.values():
            topic.changed.set()

    def publish(self, upload_id: str, type: str, data: dict[str, Any]) -> None:
        topic = self._topics.setdefault(upload_id, Topic())
        if topic.events and topic.events[-1].type in REMOVED:
            return  # a removed upload has nothing more to say
        if topic.ended_at is not None and type not in REMOVED:
            return  # after complete, only its removal may follow
        topic.last_id += 1
        topic.events.append(Event(topic.last_id, type, data))
        if type in TERMINAL or type == "error":
            topic.ended_at = time.monotonic()
            self._forget_old()  # only when a topic ends, not on every progress event
        topic.changed.set()
        topic.changed = asyncio.Event()  # waiters hold the old one, now set

    def reopen(self, topic: str) -> None:
        """Start a topic afresh if it has ended: a client's progress id reused for a retry."""
        existing = self._topics.get(topic)
        if existing is not None and existing.ended_at is not None:
            del self._topics[topic]

    def latest(self, upload_id: str) -> Event | None:
        topic = self._topics.get(upload_id)
        return topic.events[-1] if topic and topic.events else None

    async def follow(
        self, upload_id: str, after: int, heartbeat: float, terminal: tuple[str, ...] = ()
    ) -> AsyncIterator[Event | None]:
        """Events with id > `after`, as they come; None every `heartbeat` seconds of quiet.

        Ends after a terminal event (TERMINAL, or one of `terminal`).
        """
        ends = TERMINAL | set(terminal)
        topic = self._topics.setdefault(upload_id, Topic())
        cursor = after
        while not self.closing:
            fresh = [e for e in topic.events if e.id > cursor]
            for event in fresh:
                cursor = event.id
                yield event
                if event.type in ends:
                    return
            if self.closing:
                return
            waiter = topic.changed
            try:
                async with asyncio.timeout(heartbeat):
                    await waiter.wait()
            except TimeoutError:
                yield None

    def _forget_old(self) -> None:
        now = time.monotonic()
        stale = [
            key
            for key, topic in self._topics.items()
            if topic.ended_at is not None and now - topic.ended_at > LINGER
        ]
        for key in stale:
            del self._topics[key]


@runtime_checkable
class Watchable(Protocol):
    """A body that reports what it takes itself (server.bodies.RawBody, which may move its
    bytes into a file without yielding them as chunks)."""

    def watch(self, counted: Callable[[int], None]) -> None: ...


class ProgressMeter:
    """Publishes `progress` at most every `interval` seconds while bytes flow, so readers
    see an upload move during a long PATCH, not only when it ends. Bytes that arrive inside
    an interval are published at its end even if no more follow: a client that pauses
    mid-body is seen where it paused, not where the last event happened to fall."""

    def __init__(
        self,
        events: UploadEvents,
        upload_id: str,
        offset: int,
        length: int | None,
        interval: float = 0.25,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self._events = events
        self._topics = (upload_id, *aliases)
        self.offset = offset
        self._length = length
        self._interval = interval
        self._next = 0.0
        self._trailing: asyncio.TimerHandle | None = None

    def add(self, n: int) -> None:
        self.offset += n
        now = time.monotonic()
        if now >= self._next:
            self.publish()
        elif self._trailing is None:
            self._trailing = asyncio.get_running_loop().call_later(self._next - now, self.publish)

    def publish(self) -> None:
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self._next = time.monotonic() + self._interval
        for topic in self._topics:
            self._events.publish(topic, "progress", {"offset": self.offset, "length": self._length})

    def wrap(self, chunks: AsyncIterable[bytes]) -> AsyncIterable[bytes]:
        """`chunks`, counted as they are taken. A Watchable body is watched rather than
        wrapped, so that it can still take itself into a file (server/bodies/direct.py)."""
        if isinstance(chunks, Watchable):
            chunks.watch(self.add)
            return chunks
        return self._counted(chunks)

    async def _counted(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                self.add(len(chunk))
                yield chunk
        finally:
            self.stop()

    def stop(self) -> None:
        """No more events from this meter until `publish`: the caller publishes what was
        kept, or says the upload ended, and nothing may follow that."""
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
