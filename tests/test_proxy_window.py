"""The window a TLS upstream's body is decrypted into (server/proxy/decrypted.py), on its
own: what it hands out, when it pauses and resumes the transport, how it ends."""

from __future__ import annotations

import asyncio

import pytest

from server.proxy.decrypted import Window
from server.proxy.zerocopy import Truncated


class Transport:
    """Records the flow control a window asks of its transport."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def receive(window: Window, data: bytes) -> None:
    """What an SSL protocol does: ask for a buffer, decrypt into it, say how much."""
    buffer = window.get_buffer(len(data))
    buffer[: len(data)] = data
    window.buffer_updated(len(data))


def make(size: int = 8) -> tuple[Window, Transport]:
    transport = Transport()
    return Window(transport, size), transport  # type: ignore[arg-type]


async def test_bytes_come_out_in_order_and_a_full_window_pauses_until_emptied() -> None:
    window, transport = make(8)
    receive(window, b"abc")
    assert bytes(await window.filled(1)) == b"abc" and transport.calls == []
    receive(window, b"defgh")  # the window is full now
    assert transport.calls == ["pause"]
    assert bytes(await window.filled(1)) == b"abcdefgh"
    window.taken(5)
    assert transport.calls == ["pause"]  # three bytes still wait: no room made yet
    assert bytes(await window.filled(1)) == b"fgh"
    window.taken(3)
    assert transport.calls == ["pause", "resume"]
    assert len(window.get_buffer(1)) == 8  # emptied, it starts over at its beginning


async def test_a_waiting_relay_wakes_when_bytes_land() -> None:
    window, _ = make()
    waiting = asyncio.ensure_future(window.filled(5))
    await asyncio.sleep(0)
    assert not waiting.done()
    receive(window, b"xy")
    assert bytes(await waiting) == b"xy"


@pytest.mark.parametrize("end", ["eof", "lost", "lost with an error"])
async def test_bytes_before_the_end_are_delivered_then_it_is_truncated(end: str) -> None:
    window, _ = make()
    receive(window, b"tail")
    if end == "eof":
        assert window.eof_received() is False  # the transport closes itself
    else:
        window.connection_lost(ConnectionResetError() if "error" in end else None)
    assert bytes(await window.filled(1)) == b"tail"
    window.taken(4)
    with pytest.raises(Truncated):
        await window.filled(1)


async def test_an_end_wakes_a_waiting_relay() -> None:
    window, _ = make()
    waiting = asyncio.ensure_future(window.filled(5))
    await asyncio.sleep(0)
    window.connection_lost(None)
    with pytest.raises(Truncated):
        await waiting


async def test_silence_past_idle_is_a_timeout() -> None:
    window, _ = make()
    with pytest.raises(TimeoutError):
        await window.filled(0.05)


async def test_closed_it_holds_neither_buffer_nor_transport() -> None:
    window, transport = make(8)
    receive(window, b"12345678")
    window.close()
    assert len(window.get_buffer(1)) == 0  # the SSL protocols read nothing into it
    window.taken(0)
    assert transport.calls == ["pause"]  # no resume of a transport it let go of
    assert window._transport is None
