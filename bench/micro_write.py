"""Which way of writing an upload to disk is fastest without blocking the event loop?

Feeds the same stream of network-sized chunks (64 KiB, as aiohttp delivers them) to:
- aiofiles, one awaited write per chunk (a thread hand-off each);
- spigot's LocalStore.append: chunks gathered into WRITE_BUFFER-sized batches, each
  written with writev and hashed in a pool thread while the next one fills.
Both include sha256, since spigot must compute it while streaming.
Run: python -m bench.micro_write [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles

from storage import LocalStore, UploadSpec
from storage.local.store import WRITE_BUFFER

CHUNK = 64 << 10


async def chunks(total: int) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(total // CHUNK):
        yield block


async def with_aiofiles(path: Path, total: int) -> None:
    digest = hashlib.sha256()
    async with aiofiles.open(path, "wb") as f:
        async for chunk in chunks(total):
            digest.update(chunk)
            await f.write(chunk)


async def with_store(root: Path, total: int) -> None:
    store = LocalStore(root)
    await store.start()
    upload = await store.create(UploadSpec(name="x", length=total))
    await upload.append(0, chunks(total))
    await upload.finish()
    await upload.delete()
    await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = args.size_mib << 20
    coalesced = f"coalesced {WRITE_BUFFER >> 20} MiB in pool"
    results: dict[str, list[float]] = {"aiofiles per chunk": [], coalesced: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            start = time.perf_counter()
            await with_aiofiles(Path(tmp) / "a", total)
            results["aiofiles per chunk"].append(time.perf_counter() - start)
            os.unlink(Path(tmp) / "a")
            start = time.perf_counter()
            await with_store(Path(tmp) / "store", total)
            results[coalesced].append(time.perf_counter() - start)
    for name, times in results.items():
        print(f"{name:28s} {args.size_mib / statistics.median(times):8.0f} MiB/s (median)")


if __name__ == "__main__":
    asyncio.run(main())
