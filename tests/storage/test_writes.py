"""storage/writes.py: every byte lands where it should, in pieces of at most WRITE_PIECE, and
the count is exact when the disk fills part-way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.writes import WRITE_PIECE, append_all, pwritten
from tests.tools import mounted_tmpfs

MIB = 1 << 20


@pytest.mark.parametrize("size", [0, 1, WRITE_PIECE - 1, WRITE_PIECE, WRITE_PIECE + 1, 3 * MIB + 7])
def test_pwritten_writes_at_the_position_in_bounded_pieces(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        pieces = [bytes(p) for p in pwritten(fd, data, 5)]
    finally:
        os.close(fd)
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= WRITE_PIECE for p in pieces)
    assert len(pieces) == -(-size // WRITE_PIECE)
    assert (tmp_path / "f").read_bytes() == (b"\0" * 5 + data if size else b"")


def test_append_all_appends_every_chunk_and_counts_them(tmp_path: Path) -> None:
    chunks = [os.urandom(n) for n in (10, 3 * WRITE_PIECE + 1, 0, WRITE_PIECE)]
    target = tmp_path / "f"
    target.write_bytes(b"head")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND)
    try:
        assert append_all(fd, chunks) == sum(map(len, chunks))
    finally:
        os.close(fd)
    assert target.read_bytes() == b"head" + b"".join(chunks)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "small", "1m") as where:
        yield where


def test_a_full_disk_leaves_the_yielded_count_exact(small_tmpfs: Path) -> None:
    fd = os.open(small_tmpfs / "f", os.O_RDWR | os.O_CREAT)
    landed = 0
    try:
        with pytest.raises(OSError) as failed:
            for piece in pwritten(fd, os.urandom(3 * MIB), 0):
                landed += len(piece)
        assert failed.value.errno == 28  # ENOSPC
    finally:
        os.close(fd)
    assert 0 < landed <= MIB
    assert (small_tmpfs / "f").stat().st_size == landed
