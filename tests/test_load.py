"""The load suite (bench/load.py) at a quarter of its size: 16 one-shot and 16 tus uploads
of 64 MiB and 50 range readers, all at once, on local disk and on S3 (a moto server
process, parts spooled on disk; 32 MiB files there, as moto is slow). `make bench` runs it whole.

Zero errors (every status, every sha256, every range's bytes), a clean log, nothing left
behind, and spigot's peak RSS within the bound the full run must keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bench.load import FULL, MIB, RSS_TARGET, run
from bench.s3 import start_moto
from tests import processes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moto_process() -> Iterator[str]:
    """moto's server in its own process: in this one it would share the GIL with the load."""
    proc, endpoint = start_moto()
    yield endpoint
    processes.stop(proc)


def test_quarter_load(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    endpoint = request.getfixturevalue("moto_process") if backend == "s3" else None
    plan = FULL.quarter()
    if backend == "s3":  # moto copies every byte it is sent: the same concurrency, half the bytes
        plan = replace(plan, size=32 * MIB)
    result = run(plan, backend, tmp_path / "load", endpoint)
    assert result.errors == []
    assert result.uploaded == plan.uploads * plan.size
    assert result.ranges >= plan.readers
    assert result.peak_rss <= RSS_TARGET, f"peak RSS {result.peak_rss / MIB:.0f} MiB"
