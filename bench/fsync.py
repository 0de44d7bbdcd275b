"""`make bench`, durability: what each `--fsync` mode costs on this machine's disk.

Per mode, a fresh spigot on local disk takes one-shot uploads: big ones (the disk's
throughput decides) and many small ones (each completion's fsyncs decide). Alternating
rounds, medians. Numbers go in bench/RESULTS.md with the date.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from bench.deploy import spigot
from bench.run import curl, publish
from tests.conftest import write_random

MIB = 1 << 20
MODES = ("never", "finish", "always")


def timed_puts(url: str, source: Path, count: int, parallel: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: curl("-T", str(source), f"{url}/files/f{i}.bin"), range(count)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--dir", default=str(Path.cwd() / "bench" / "out"), help="a real disk")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    big_s: dict[str, list[float]] = {m: [] for m in MODES}
    small_s: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="spigot-fsync-", dir=args.dir) as tmp:
        work = Path(tmp)
        big, small = work / "big.bin", work / "small.bin"
        write_random(big, args.big_mib * MIB)
        write_random(small, 64 * 1024)
        for i in range(args.rounds):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                server = spigot(work / f"data-{mode}-{i}", "--fsync", mode)
                try:
                    big_s[mode].append(timed_puts(server.url, big, 2, 1) / 2)
                    small_s[mode].append(timed_puts(server.url, small, args.small, 8))
                finally:
                    server.stop()
            print(f"fsync round {i + 1}/{args.rounds} done", flush=True)
    lines = [
        f"## {date.today().isoformat()}: --fsync modes (local disk under {args.dir})",
        "",
        f"{args.rounds} alternating rounds, medians; {args.big_mib} MiB one-shot uploads one "
        f"at a time, and {args.small} uploads of 64 KiB, 8 at a time.",
        "",
        "| mode | big uploads | vs never | 64 KiB uploads | vs never |",
        "| --- | --- | --- | --- | --- |",
    ]
    base_big = args.big_mib / statistics.median(big_s["never"])
    base_small = args.small / statistics.median(small_s["never"])
    for mode in MODES:
        rate = args.big_mib / statistics.median(big_s[mode])
        files = args.small / statistics.median(small_s[mode])
        lines.append(
            f"| {mode} | {rate:,.0f} MiB/s | {rate / base_big:.2f}x | {files:,.0f} files/s "
            f"| {files / base_small:.2f}x |"
        )
    publish(lines, not args.no_record)


if __name__ == "__main__":
    main()
