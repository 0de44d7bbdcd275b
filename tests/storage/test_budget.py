"""BatchBudget: one upload alone gathers the largest batch; many share the budget."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from unittest import mock

import pytest
from aiohttp import StreamReader

from server.bodies.chunks import _set_window
from storage.budget import BatchBudget

MIB = 1 << 20
KIB = 1 << 10


@pytest.mark.parametrize(
    ("active", "batch", "shared"),
    [
        (0, 4 * MIB, False),  # asked before anyone joined: the largest
        (1, 4 * MIB, False),
        (4, 4 * MIB, False),
        (5, 3276 * KIB + 819, True),
        (16, MIB, True),
        (128, 128 * KIB, True),
        (256, 64 * KIB, True),
        (10_000, 64 * KIB, True),  # never below the smallest
    ],
)
def test_batches_shrink_as_uploads_join(active: int, batch: int, shared: bool) -> None:
    budget = BatchBudget(total=16 * MIB, largest=4 * MIB, smallest=64 * KIB)
    for _ in range(active):
        budget.join()
    assert budget.batch() == batch
    assert budget.shared is shared
    for _ in range(active):
        budget.leave()
    assert (budget.active, budget.batch()) == (0, 4 * MIB)


async def test_a_read_window_can_be_lowered_again() -> None:
    """aiohttp can only raise a stream's window; bodies._set_window also lowers it, and
    this says so if aiohttp's StreamReader ever changes shape."""
    protocol = mock.Mock(_reading_paused=False)
    stream = StreamReader(protocol, 1 << 16, loop=asyncio.get_running_loop())
    # asyncio's transport under a plain protocol (aiohttp's test server): max_size is what
    # one recv() may take. Under spigot's own protocol, that protocol's read_size is.
    transport = SimpleNamespace(max_size=256 * KIB, get_protocol=lambda: None)
    _set_window(stream, transport, MIB)  # type: ignore[arg-type]
    assert stream.get_read_buffer_limits() == (MIB, 2 * MIB)
    assert transport.max_size == 256 * KIB
    _set_window(stream, transport, 64 * KIB)  # type: ignore[arg-type]
    assert stream.get_read_buffer_limits() == (64 * KIB, 128 * KIB)
    assert transport.max_size == 64 * KIB
    sized = SimpleNamespace(read_size=256 * KIB)
    guarded = SimpleNamespace(max_size=256 * KIB, get_protocol=lambda: sized)
    _set_window(stream, guarded, 32 * KIB)  # type: ignore[arg-type]
    assert (sized.read_size, guarded.max_size) == (32 * KIB, 256 * KIB)
    _set_window(stream, transport, 64 * KIB)  # type: ignore[arg-type]
    stream.feed_data(b"x" * (128 * KIB + 1))
    protocol.pause_reading.assert_called_once()  # the lowered window is the one obeyed
