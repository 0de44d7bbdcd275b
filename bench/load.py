"""The load suite: many uploads and range readers at once against one spigot process.

Everything runs together, as a busy server sees it:
- one-shot uploads (PUT with a Content-Length, as `curl -T` sends them);
- tus uploads, created and then filled in 8 MiB PATCHes;
- readers fetching random byte ranges of a file stored beforehand, until the uploads end.

Each upload's sha256 is known to the client before it starts and is compared with spigot's;
each range's bytes are compared with the reference file. Any error fails the run. spigot's
peak RSS (VmHWM) and its CPU time (from /proc) are reported beside throughput.

The bytes are made on the fly from a small random pool, each 1 MiB block stamped with its
upload and position, so no two blocks in a run are alike and no upload is held whole.

`python -m bench.load` (in `make bench`) runs the full suite on local disk and on S3 (a moto
server, parts spooled on disk), then a sweep of 1, 16, 64 and 256 concurrent uploads that is
plotted to bench/load.png. tests/test_load.py runs the suite at a quarter of the size.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import aiohttp
import boto3

from bench.run import record
from bench.s3 import start_moto
from bench.servers import Server, free_port, wait_listening
from tests import processes
from tests.conftest import BUCKET, FAKE_AWS, ROOT

MIB = 1 << 20
BLOCK = MIB
POOL = [os.urandom(BLOCK) for _ in range(4)]
RANGE_LENGTHS = (4 << 10, 64 << 10, 256 << 10)
PLOT = Path(__file__).with_name("load.png")
RSS_TARGET = 160 * MIB
BOTO_FAKE = {
    "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    "region_name": FAKE_AWS["AWS_DEFAULT_REGION"],
}


@dataclass(frozen=True)
class Plan:
    one_shot: int
    tus: int
    readers: int
    size: int = 64 * MIB
    patch: int = 8 * MIB
    # What the readers read, and how long each waits between ranges (a player fetching
    # segments, not a flood). Both small, because moto reads a whole object for every range
    # it serves and serves ~100 a second: with 64 MiB and no pause, the S3 run measured
    # moto's copying, and the uploads starved behind it.
    reference: int = MIB
    pause: float = 0.2

    def quarter(self) -> Plan:
        return replace(
            self, one_shot=self.one_shot // 4, tus=self.tus // 4, readers=self.readers // 4
        )

    @property
    def uploads(self) -> int:
        return self.one_shot + self.tus


FULL = Plan(one_shot=64, tus=64, readers=200)


@dataclass
class Result:
    plan: Plan
    seconds: float = 0.0
    uploaded: int = 0
    ranges: int = 0
    range_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    peak_rss: int = 0
    cpu_seconds: float = 0.0

    @property
    def mib_per_s(self) -> float:
        return self.uploaded / MIB / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_seconds / (self.uploaded / (1 << 30)) if self.uploaded else 0.0

    @property
    def range_p99_ms(self) -> float:
        if len(self.range_latencies) < 2:
            return 0.0
        return statistics.quantiles(self.range_latencies, n=100)[98] * 1000


def blocks(upload: int, start: int, end: int) -> Iterator[bytes]:
    """Upload `upload`'s bytes from `start` to `end` (both on a block boundary)."""
    assert start % BLOCK == 0 and end % BLOCK == 0
    for j in range(start // BLOCK, end // BLOCK):
        block = bytearray(POOL[j % len(POOL)])
        block[:16] = struct.pack(">QQ", upload, j)
        yield bytes(block)


def content_sha256(upload: int, size: int) -> str:
    digest = hashlib.sha256()
    for block in blocks(upload, 0, size):
        digest.update(block)
    return digest.hexdigest()


async def body(upload: int, start: int, end: int) -> AsyncIterator[bytes]:
    for block in blocks(upload, start, end):
        yield block  # aiohttp drains the transport between blocks: real backpressure


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


async def one_shot(session: aiohttp.ClientSession, url: str, n: int, plan: Plan, sha: str) -> None:
    headers = {"Content-Length": str(plan.size)}
    put = session.put(
        f"{url}/files/?name=load-{n}.bin", data=body(n, 0, plan.size), headers=headers
    )
    async with put as r:
        doc = await r.json(content_type=None)
        expect(r.status == 201, f"one-shot {n}: {r.status} {doc}")
    expect(doc["size"] == plan.size, f"one-shot {n}: size {doc['size']}")
    expect(doc["sha256"] == sha, f"one-shot {n}: sha256 {doc['sha256']} is not {sha}")


async def tus(session: aiohttp.ClientSession, url: str, n: int, plan: Plan, sha: str) -> None:
    tus_headers = {"Tus-Resumable": "1.0.0"}
    create = {**tus_headers, "Upload-Length": str(plan.size), "Content-Length": "0"}
    async with session.post(f"{url}/files/", headers=create) as r:
        expect(r.status == 201, f"tus {n}: create {r.status} {await r.text()}")
        location = r.headers["Location"]
    for offset in range(0, plan.size, plan.patch):
        end = min(offset + plan.patch, plan.size)
        headers = {
            **tus_headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(end - offset),
        }
        async with session.patch(location, data=body(n, offset, end), headers=headers) as r:
            expect(r.status == 204, f"tus {n}: PATCH at {offset}: {r.status} {await r.text()}")
            expect(r.headers["Upload-Offset"] == str(end), f"tus {n}: offset {r.headers}")
    async with session.head(location) as r:
        expect(r.status == 200, f"tus {n}: HEAD {r.status}")
        expect(r.headers["ETag"] == f'"{sha}"', f"tus {n}: ETag {r.headers['ETag']} is not {sha}")


async def reader(
    session: aiohttp.ClientSession, url: str, reference: bytes, done: asyncio.Event, result: Result
) -> None:
    rng = random.Random()
    while True:
        length = rng.choice(RANGE_LENGTHS)
        start = rng.randrange(len(reference) - length)
        last = start + length - 1
        began = time.perf_counter()
        async with session.get(url, headers={"Range": f"bytes={start}-{last}"}) as r:
            data = await r.read()
        result.range_latencies.append(time.perf_counter() - began)
        expect(r.status == 206, f"range {start}-{last}: {r.status}")
        expect(r.headers["Content-Range"] == f"bytes {start}-{last}/{len(reference)}", "range")
        expect(data == reference[start : last + 1], f"range {start}-{last}: wrong bytes")
        result.ranges += 1
        if done.is_set():
            return
        await asyncio.sleep(rng.uniform(0, 2 * result.plan.pause))


async def store_reference(
    session: aiohttp.ClientSession, url: str, plan: Plan
) -> tuple[str, bytes]:
    reference = b"".join(blocks(1 << 40, 0, plan.reference))
    async with session.put(f"{url}/files/?name=reference.bin", data=reference) as r:
        doc = await r.json(content_type=None)
        expect(r.status == 201, f"reference: {r.status} {doc}")
    return f"{url}/files/{doc['id']}", reference


async def drive(url: str, pid: int, plan: Plan) -> Result:
    """Run `plan` against the spigot at `url` (process `pid`); the result holds any errors."""
    result = Result(plan)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(2) as pool:  # hashlib releases the GIL: both cores
        shas = await asyncio.gather(
            *(loop.run_in_executor(pool, content_sha256, n, plan.size) for n in range(plan.uploads))
        )
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        target, reference = await store_reference(session, url, plan)
        done = asyncio.Event()
        cpu_before = processes.cpu_seconds(pid)
        began = time.perf_counter()
        uploads = [one_shot(session, url, n, plan, shas[n]) for n in range(plan.one_shot)]
        uploads += [tus(session, url, n, plan, shas[n]) for n in range(plan.one_shot, plan.uploads)]

        async def uploading() -> list[BaseException | None]:
            try:
                return await asyncio.gather(*uploads, return_exceptions=True)
            finally:
                done.set()

        readers = [reader(session, target, reference, done, result) for _ in range(plan.readers)]
        outcomes, *read_outcomes = await asyncio.gather(
            uploading(), *readers, return_exceptions=True
        )
        result.seconds = time.perf_counter() - began
        result.cpu_seconds = processes.cpu_seconds(pid) - cpu_before
    for outcome in [*outcomes, *read_outcomes]:  # type: ignore[misc]
        if isinstance(outcome, BaseException):
            result.errors.append(f"{type(outcome).__name__}: {outcome}")
    result.uploaded = plan.uploads * plan.size - plan.size * sum(
        isinstance(o, BaseException) for o in outcomes
    )
    result.peak_rss = processes.peak_rss(pid)
    return result


def start_spigot(work: Path, storage: Sequence[str], env: dict[str, str]) -> Server:
    """A spigot process for the load, its log in a file (a pipe nobody drains would fill)."""
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--port", str(port), *storage]
    command += ["--max-request-size", "0", "--log-level", "warning"]
    with open(work / "spigot.log", "ab") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **env}
        )
    wait_listening(port, proc, timeout=90)
    return Server("spigot", f"http://127.0.0.1:{port}", proc)


def storage_args(backend: str, work: Path, endpoint: str | None) -> list[str]:
    """`spigot serve` flags for a fresh store under `work`: a directory, or an S3 prefix
    (the bucket is made here) with parts spooled in a temp directory."""
    if backend == "local":
        return ["--storage", str(work / "data")]
    assert endpoint is not None
    boto3.client("s3", endpoint_url=endpoint, **BOTO_FAKE).create_bucket(Bucket=BUCKET)
    prefix = f"s3://{BUCKET}/{work.name}"
    return ["--storage", prefix, "--s3-endpoint-url", endpoint, "--temp-dir", str(work / "spool")]


def run(plan: Plan, backend: str, work: Path, endpoint: str | None = None) -> Result:
    """One spigot process over `backend`, driven by `plan`, then stopped. Any warning or
    traceback spigot logged counts as an error, as does anything left behind: a clean run
    leaves a clean log, no temp file and no unfinished multipart upload."""
    work.mkdir(parents=True, exist_ok=True)
    server = start_spigot(work, storage_args(backend, work, endpoint), FAKE_AWS)
    try:
        result = asyncio.run(drive(server.url, server.proc.pid, plan))
    finally:
        server.stop()
    log = (work / "spigot.log").read_text(errors="replace").strip()
    if log:
        result.errors.append(f"spigot logged: {log[:2000]}")
    result.errors += leftovers(backend, work, endpoint)
    return result


def leftovers(backend: str, work: Path, endpoint: str | None) -> list[str]:
    scratch = work / ("data/.tmp" if backend == "local" else "spool")
    found = [f"left in {p}" for p in scratch.rglob("*") if p.is_file()] if scratch.exists() else []
    if backend == "s3":
        s3 = boto3.client("s3", endpoint_url=endpoint, **BOTO_FAKE)
        listed = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{work.name}/")
        found += [f"unfinished multipart upload {u['Key']}" for u in listed.get("Uploads", [])]
    return found


SWEEP = (1, 16, 64, 256)
SWEEP_SIZE = 16 * MIB


def sweep_plan(level: int) -> Plan:
    """`level` uploads at once, half one-shot and half tus, 16 MiB each, no readers."""
    return Plan(one_shot=level - level // 2, tus=level // 2, readers=0, size=SWEEP_SIZE)


def on_s3(plan: Plan, work: Path) -> Result:
    """`run` over a fresh moto server process (moto keeps objects; a fresh one per run
    keeps its memory and disk flat)."""
    moto, endpoint = start_moto()
    try:
        return run(plan, "s3", work, endpoint)
    finally:
        processes.stop(moto)


def measure(plan: Plan, backend: str, work: Path) -> Result:
    result = on_s3(plan, work) if backend == "s3" else run(plan, backend, work)
    print(
        f"{backend} {plan.uploads} uploads, {plan.readers} readers: "
        f"{result.mib_per_s:.0f} MiB/s, peak RSS {result.peak_rss / MIB:.0f} MiB, "
        f"{len(result.errors)} errors",
        flush=True,
    )
    return result


def plot(sweep: dict[str, list[Result]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib import pyplot as plt

    fig, (speed, memory) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for backend, results in sweep.items():
        levels = [r.plan.uploads for r in results]
        label = {"local": "local disk", "s3": "S3 (moto)"}[backend]
        speed.plot(levels, [r.mib_per_s for r in results], marker="o", label=label)
        memory.plot(levels, [r.peak_rss / MIB for r in results], marker="o", label=label)
    memory.axhline(RSS_TARGET / MIB, color="grey", linestyle="--", label="load-suite bound")
    for ax, title, unit in (
        (speed, "upload throughput", "MiB/s, all uploads together"),
        (memory, "spigot peak RSS", "MiB"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(SWEEP), [str(n) for n in SWEEP])
        ax.set_xlabel("concurrent uploads")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=100)


def report(full: dict[str, Result], sweep: dict[str, list[Result]]) -> list[str]:
    lines = [
        "",
        f"## {date.today().isoformat()}: load suite (bench/load.py)",
        "",
        f"All at once, one spigot process: {FULL.one_shot} one-shot uploads and {FULL.tus} tus "
        f"uploads (in {FULL.patch // MIB} MiB PATCHes) of {FULL.size // MIB} MiB, and "
        f"{FULL.readers} clients reading random 4-256 KiB ranges of a "
        f"{FULL.reference // MIB} MiB file, {FULL.pause:g} s apart on average, until the "
        "uploads end. Every sha256 and every "
        "range's bytes are checked. S3 is a moto server process, parts spooled on disk; moto "
        "(~80 MiB/s at best, bench/s3.py) sets that run's pace.",
        "",
        "| backend | errors | upload MiB/s | spigot CPU s/GiB | ranges (p99) | peak RSS "
        f"(target <= {RSS_TARGET // MIB} MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for backend, r in full.items():
        verdict = "met" if r.peak_rss <= RSS_TARGET else "**missed**"
        lines.append(
            f"| {backend} | {len(r.errors)} | {r.mib_per_s:.0f} | {r.cpu_per_gib:.2f} "
            f"| {r.ranges} ({r.range_p99_ms:.0f} ms) | {r.peak_rss / MIB:.0f} MiB, {verdict} |"
        )
    errors = [e for r in full.values() for e in r.errors]
    lines += [f"- error: `{e[:300]}`" for e in errors[:10]]
    lines += [
        "",
        f"Levels: N uploads at once, half one-shot and half tus, {SWEEP_SIZE // MIB} MiB "
        "each, no readers; plotted in bench/load.png. RSS per extra upload is "
        "(peak at N - peak at 1) / (N - 1).",
        "",
        "| backend | uploads | errors | MiB/s | spigot CPU s/GiB | peak RSS "
        "| RSS per extra upload |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, results in sweep.items():
        alone = results[0].peak_rss
        for r in results:
            n = r.plan.uploads
            per = f"{(r.peak_rss - alone) / (n - 1) / 1024:.0f} KiB" if n > 1 else ""
            lines.append(
                f"| {backend} | {n} | {len(r.errors)} | {r.mib_per_s:.0f} | {r.cpu_per_gib:.2f} "
                f"| {r.peak_rss / MIB:.0f} MiB | {per} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quarter", action="store_true", help="the make-test size")
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    plan = FULL.quarter() if args.quarter else FULL
    backends = ("local", "s3")
    with tempfile.TemporaryDirectory(prefix="spigot-load-") as tmp:
        work = Path(tmp)
        full = {b: measure(plan, b, work / f"full-{b}") for b in backends}
        sweep = {
            b: [measure(sweep_plan(n), b, work / f"sweep-{b}-{n}") for n in SWEEP] for b in backends
        }
    lines = report(full, sweep)
    print("\n".join(lines))
    if not args.no_record:
        plot(sweep, PLOT)
        record("\n".join(lines))
    failed = [
        e for r in [*full.values(), *(r for rs in sweep.values() for r in rs)] for e in r.errors
    ]
    if failed:
        raise SystemExit(f"the load suite had {len(failed)} errors")


if __name__ == "__main__":
    main()
