"""`make bench`, S3 part: a 1 GiB upload through spigot into a moto server, against boto3's own
`upload_file` (TransferManager, 8 MiB parts, 10 threads) to the same server, in one run.

Both legs write to one moto server process over loopback HTTP, so the ratio compares the
clients' pipelines, not S3. Rounds alternate and medians are reported (the machine is
shared and noisy). spigot's peak RSS is its VmHWM; its temp disk is sampled while a
deferred-length tus upload (planned for 1 TiB, so ~105 MiB parts that must spool) runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

from bench.run import publish
from bench.servers import Server, free_port, wait_listening
from tests import processes
from tests.conftest import FAKE_AWS, ROOT, write_random
from tests.tools import require

MIB = 1 << 20
BUCKET = "bench"
TEMP_CAP = 320 * MIB


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port, proc, timeout=30)
    return proc, f"http://127.0.0.1:{port}"


def start_spigot(endpoint: str, temp_dir: Path, extra: list[str]) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            *("--port", str(port), "--log-level", "warning"),
            *("--storage", f"s3://{BUCKET}/spigot", "--s3-endpoint-url", endpoint),
            *("--max-request-size", "0", "--temp-dir", str(temp_dir)),
            *("--temp-cap", str(TEMP_CAP)),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **FAKE_AWS},
    )
    wait_listening(port, proc)
    return Server("spigot", f"http://127.0.0.1:{port}", proc)


def curl(*args: str) -> str:
    done = subprocess.run(
        [require("curl"), "-sS", "--fail", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def spigot_put(spigot: Server, path: Path) -> float:
    start = time.perf_counter()
    curl("-T", str(path), f"{spigot.url}/files/")
    return time.perf_counter() - start


def boto3_put(client: Any, path: Path, key: str) -> float:
    start = time.perf_counter()
    client.upload_file(str(path), BUCKET, key, Config=TransferConfig())
    return time.perf_counter() - start


def deferred_tus_temp_peak(spigot: Server, path: Path, size: int, temp_dir: Path) -> int:
    """Peak bytes in spigot's temp directory during a deferred-length tus upload."""
    head = curl(
        "-i",
        "-X",
        "POST",
        *("-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Defer-Length: 1"),
        f"{spigot.url}/files/",
    )
    location = next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("location:")
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            used = 0
            for p in temp_dir.rglob("*"):
                with contextlib.suppress(FileNotFoundError):  # removed while we looked
                    used += p.stat().st_size if p.is_file() else 0
            peak = max(peak, used)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        curl(
            "-X",
            "PATCH",
            *("-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0"),
            *("-H", f"Upload-Length: {size}"),
            *("-H", "Content-Type: application/offset+octet-stream"),
            *("-T", str(path)),  # streamed from the file; --data-binary would load it whole
            location,
        )
    finally:
        done.set()
        sampler.join()
    return peak


def empty_bucket(client: Any) -> None:
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--spigot-arg",
        action="append",
        default=[],
        help="extra `spigot serve` argument, for tuning",
    )
    args = parser.parse_args()
    os.environ.update(FAKE_AWS)
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="spigot-bench-s3-") as tmp:
        work = Path(tmp)
        source = work / "payload.bin"
        write_random(source, size)
        moto, endpoint = start_moto()
        temp_dir = work / "spool"
        spigot = None
        try:
            client = boto3.client("s3", endpoint_url=endpoint)
            client.create_bucket(Bucket=BUCKET)
            spigot = start_spigot(endpoint, temp_dir, args.spigot_arg)
            times: dict[str, list[float]] = {"spigot": [], "boto3": []}
            for i in range(args.rounds):
                key = f"boto3/{i}"
                legs = [
                    ("spigot", lambda: spigot_put(spigot, source)),
                    ("boto3", lambda: boto3_put(client, source, key)),  # noqa: B023 - called now
                ]
                for name, leg in legs if i % 2 == 0 else legs[::-1]:
                    times[name].append(leg())
                    empty_bucket(client)
                    print(
                        f"round {i + 1}: {name} {size / MIB / times[name][-1]:.0f} MiB/s",
                        flush=True,
                    )
            rss = spigot.peak_rss()
            temp_peak = deferred_tus_temp_peak(spigot, source, size, temp_dir)
            rss_spooled = spigot.peak_rss()
        finally:
            if spigot is not None:
                spigot.stop()
            processes.stop(moto)
    med = {name: statistics.median(t) for name, t in times.items()}
    mbps = {name: size / MIB / t for name, t in med.items()}
    ratio = med["boto3"] / med["spigot"]
    lines = [
        "",
        f"## {date.today().isoformat()}: S3 (moto server over loopback HTTP)",
        "",
        f"{args.rounds} alternating rounds, {args.size_mib} MiB payload, medians.",
        "",
        "| measure | spigot | boto3 upload_file | ratio (target) |",
        "|---|---|---|---|",
        f"| upload into moto | {mbps['spigot']:.0f} MiB/s | {mbps['boto3']:.0f} MiB/s "
        f"| {ratio:.2f}x (>= 1.0x, issue 16) |",
        f"| spigot peak RSS, one-shot uploads | {rss / MIB:.0f} MiB | | (<= 128 MiB) |",
        f"| spigot peak RSS, whole run | {rss_spooled / MIB:.0f} MiB | | (<= 128 MiB) |",
        f"| temp disk peak, deferred-length tus PATCH | {temp_peak / MIB:.0f} MiB "
        f"| | (<= cap {TEMP_CAP // MIB} MiB) |",
        "",
    ]
    publish(lines, not args.no_record)


if __name__ == "__main__":
    main()
