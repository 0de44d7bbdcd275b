"""tus PATCH throughput, spigot vs @tus/server + @tus/file-store, both storing on tmpfs.

`make bench` measures the tus PATCH on disk, where this VM's sustained write rate caps both
servers; on tmpfs the comparison shows what each server itself costs. Stored files are
deleted after every round so memory stays bounded.
Run: python -m bench.tus_tmpfs [--size-mib 1024] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.run import tus_patch
from bench.servers import start_spigot, start_tus_node
from tests.conftest import write_random

MIB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="spigot-bench-") as tmp:
        work = Path(tmp)
        source = work / "payload.bin"
        write_random(source, size)
        spigot, tus_node = start_spigot(work), start_tus_node(work)
        rates: dict[str, list[float]] = {"spigot": [], "tus-node": []}
        try:
            for i in range(args.rounds):
                for server in [spigot, tus_node] if i % 2 == 0 else [tus_node, spigot]:
                    rates[server.name].append(size / tus_patch(server, source, size) / MIB)
                for stored in (work / "spigot-data", work / "tus-node-data"):
                    for f in stored.iterdir():
                        if f.is_file():
                            f.unlink()
            rss = spigot.peak_rss()
        finally:
            spigot.stop()
            tus_node.stop()
    ours, theirs = (statistics.median(rates[n]) for n in ("spigot", "tus-node"))
    print(f"tus PATCH on tmpfs, {args.size_mib} MiB, {args.rounds} alternating rounds, medians")
    print(f"spigot {ours:.0f} MiB/s, @tus/server {theirs:.0f} MiB/s, ratio {ours / theirs:.2f}x")
    print(f"spigot peak RSS {rss / MIB:.0f} MiB")


if __name__ == "__main__":
    main()
