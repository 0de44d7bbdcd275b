"""The receive path: one large upload at a time into spigot, nginx and @tus/server, on disk
and on tmpfs, with each server's CPU seconds per GiB from /proc (issue 16's legs).

On a disk, the disk sets every server's pace and the comparison says little about the
servers; on tmpfs, storage costs next to nothing and what is left is each server's own
work. The ceiling is an aiohttp handler on uvloop that drops every byte (bench/discard.py):
a Python server that stores and hashes cannot pass it.

Legs alternate in order each round; figures are medians. spigot is run as configured by
default (uvloop, bodies taken straight from the socket, sha256), and once more with
--no-direct-receive, with --event-loop asyncio and with --checksum none, to show what each
costs.
Run: python -m bench.receive [--size-mib 512] [--rounds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bench.run import curl, publish, tus_patch
from bench.servers import (
    ROOT,
    Server,
    free_port,
    start_nginx,
    start_tus_node,
    wait_listening,
)
from tests import processes
from tests.conftest import write_random

MIB = 1 << 20
GIB = 1 << 30


def start_spigot_variant(workdir: Path, name: str, *flags: str) -> Server:
    port = free_port()
    data = workdir / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "server", "serve", "--port", str(port)),
            *("--storage", str(data), "--max-request-size", "0", "--log-level", "warning"),
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    wait_listening(port, proc)
    return Server(name, f"http://127.0.0.1:{port}", proc)


def start_discard() -> Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.discard", str(port)], cwd=ROOT)
    wait_listening(port, proc)
    return Server("discard", f"http://127.0.0.1:{port}", proc)


def server_cpu(server: Server) -> float:
    """CPU seconds of the server's process and its children (nginx's worker)."""
    pids = [server.proc.pid]
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return sum(processes.cpu_seconds(pid) for pid in pids)


def put(server: Server, path: Path) -> None:
    if server.name == "nginx":
        curl("-T", str(path), f"{server.url}/{path.name}")
    else:
        json.loads(curl("-T", str(path), f"{server.url}/files/"))


def timed(server: Server, send: Callable[[], object]) -> tuple[float, float]:
    """Seconds of wall time and of the server's CPU for one upload."""
    cpu = server_cpu(server)
    start = time.perf_counter()
    send()
    return time.perf_counter() - start, server_cpu(server) - cpu


def clear(workdir: Path) -> None:
    for stored in workdir.glob("*-data"):
        for f in stored.rglob("*"):
            if f.is_file():
                f.unlink()
    for f in (workdir / "nginx" / "html").glob("*"):
        f.unlink()


# --checksum none shows what sha256 costs; issue 16's targets are judged with it on.
VARIANTS = (("--no-direct-receive",), ("--event-loop", "asyncio"), ("--checksum", "none"))
UNJUDGED = "spigot --checksum none"
# On a disk, nginx answers once the page cache holds the file; spigot's default waits for
# the disk (--fsync finish). This variant makes nginx's promise, to compare like with like.
DISK_VARIANTS = (*VARIANTS, ("--fsync", "never"))


def variant_names(flags: tuple[tuple[str, ...], ...]) -> list[str]:
    return ["spigot", *(f"spigot {' '.join(f)}".replace("--event-loop ", "") for f in flags)]


def measure(
    workdir: Path, size: int, rounds: int, flags: tuple[tuple[str, ...], ...]
) -> dict[str, dict[str, list[float]]]:
    source = workdir / "payload.bin"
    write_random(source, size)
    spigot = start_spigot_variant(workdir, "spigot")
    variants = [
        start_spigot_variant(workdir, name, *f)
        for name, f in zip(variant_names(flags)[1:], flags, strict=True)
    ]
    nginx, tus_node, discard = start_nginx(workdir), start_tus_node(workdir), start_discard()
    everyone = [spigot, *variants, nginx, tus_node, discard]
    legs: list[tuple[str, Server, Callable[[], object]]] = []
    for server in [spigot, *variants, nginx, discard]:
        legs.append(("one-shot", server, lambda s=server: put(s, source)))
    for server in [spigot, *variants, tus_node]:
        legs.append(("tus", server, lambda s=server: tus_patch(s, source, size)))
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for i in range(rounds):
            for leg, server, send in legs if i % 2 == 0 else legs[::-1]:
                wall, cpu = timed(server, send)
                got = results.setdefault(f"{leg} {server.name}", {"wall": [], "cpu": []})
                got["wall"].append(wall)
                got["cpu"].append(cpu)
                clear(workdir)
            print(f"  round {i + 1}/{rounds} done", flush=True)
        rss = spigot.peak_rss()
    finally:
        for server in everyone:
            server.stop()
    results["rss"] = {"spigot": [float(rss)]}
    return results


def table(
    label: str, size: int, got: dict[str, dict[str, list[float]]], names: list[str]
) -> list[str]:
    def rate(key: str) -> float:
        return size / statistics.median(got[key]["wall"]) / MIB

    def cpu(key: str) -> float:
        return statistics.median(got[key]["cpu"]) / (size / GIB)

    nginx, ceiling, tus_node = (
        rate("one-shot nginx"),
        rate("one-shot discard"),
        rate("tus tus-node"),
    )
    lines = [
        f"### {label}",
        "",
        "| leg | MiB/s | CPU-s per GiB | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        ours = rate(f"one-shot {name}")
        met = "yes" if ours >= nginx and ours >= 0.5 * ceiling else "NO"
        lines.append(
            f"| one-shot, {name} | {ours:,.0f} | {cpu(f'one-shot {name}'):.2f} | "
            f"{ours / nginx:.2f}x nginx, {ours / ceiling:.2f}x ceiling | >= 1.0x nginx, "
            f">= 0.5x ceiling | {'not judged (no sha256)' if name == UNJUDGED else met} |"
        )
    lines.append(f"| one-shot, nginx PUT | {nginx:,.0f} | {cpu('one-shot nginx'):.2f} | | | |")
    lines.append(
        f"| one-shot, discard ceiling | {ceiling:,.0f} | {cpu('one-shot discard'):.2f} | | | |"
    )
    for name in names:
        ours = rate(f"tus {name}")
        met = "yes" if ours >= 1.5 * tus_node else "NO"
        lines.append(
            f"| tus PATCH, {name} | {ours:,.0f} | {cpu(f'tus {name}'):.2f} | "
            f"{ours / tus_node:.2f}x @tus/server | >= 1.5x | "
            f"{'not judged (no sha256)' if name == UNJUDGED else met} |"
        )
    lines.append(f"| tus PATCH, @tus/server | {tus_node:,.0f} | {cpu('tus tus-node'):.2f} | | | |")
    spigot_cpu = cpu("one-shot spigot")
    lines.append(
        f"| spigot CPU-s per GiB received (sha256 included) | | {spigot_cpu:.2f} | | <= 1.3 "
        f"| {'yes' if spigot_cpu <= 1.3 else 'NO'} |"
    )
    rss = got["rss"]["spigot"][0] / MIB
    lines.append(
        f"| spigot peak RSS | {rss:.0f} MiB | | | <= 64 MiB | {'yes' if rss <= 64 else 'NO'} |"
    )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--disk-dir", default=None, help="where the disk legs store (a tempdir)")
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    size = args.size_mib * MIB
    lines = [
        f"## {date.today().isoformat()}: the receive path, on disk and on tmpfs",
        "",
        f"{args.rounds} alternating rounds of one {args.size_mib} MiB upload per leg, medians; "
        "one process each; CPU from /proc for the server alone (nginx: its worker too).",
        "",
    ]
    legs = (("tmpfs (/dev/shm)", "/dev/shm", VARIANTS), ("disk", args.disk_dir, DISK_VARIANTS))
    for label, where, flags in legs:
        print(f"{label}:", flush=True)
        with tempfile.TemporaryDirectory(dir=where, prefix="spigot-receive-") as tmp:
            got = measure(Path(tmp), size, args.rounds, flags)
            lines += table(label, size, got, variant_names(flags))
    publish(lines, not args.no_record)


if __name__ == "__main__":
    main()
