"""`spigot download URL -o FILE [-j N]`: N parallel ranges into `FILE.part`, resumable.

What each range has written is recorded beside the data (`FILE.part.json`) only after the
bytes are written, so after a crash or Ctrl-C a rerun continues each range from where it
stopped, with `If-Range` on the file's ETag: a file that changed meanwhile answers 200,
not 206, and the download starts over rather than splicing two versions. The sha256 that
spigot's strong ETag carries is checked before `FILE` appears.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from .progress import Board, Throttle
from .upload import TransferFailed

CHUNK = 256 << 10
SAVE_EVERY = 1.0  # seconds between records of progress
TIMEOUT = (10, 60)  # connect, read
_SHA256_ETAG = re.compile(r'"([0-9a-f]{64})"')


@dataclass
class Segment:
    start: int
    end: int  # exclusive
    done: int  # bytes of this segment written

    @property
    def next(self) -> int:
        return self.start + self.done


def plan(size: int, jobs: int) -> list[Segment]:
    jobs = max(1, min(jobs, max(1, size // (1 << 20))))  # no range under 1 MiB
    step = -(-size // jobs) if size else 0
    return [Segment(a, min(a + step, size), 0) for a in range(0, size, step)] if size else []


class State:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self, etag: str, size: int) -> list[Segment] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("etag") != etag or data.get("size") != size:
            return None
        return [Segment(**s) for s in data["segments"]]

    def save(self, etag: str, size: int, segments: list[Segment]) -> None:
        with self._lock:
            record = {"etag": etag, "size": size, "segments": [vars(s) for s in segments]}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.path)


def download(
    url: str, output: Path, token: str | None, jobs: int, rate: int, board: Board
) -> tuple[int, str | None]:
    """Fetch `url` to `output`; returns (bytes resumed from, sha256 checked or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        head = requests.head(url, headers=headers, timeout=TIMEOUT, allow_redirects=True)
    except requests.RequestException:
        raise TransferFailed(f"{url}: the server could not be reached") from None
    if head.status_code != 200:
        raise TransferFailed(f"{url}: the server answered {head.status_code}")
    size = int(head.headers.get("Content-Length", "0"))
    etag = head.headers.get("ETag", "")
    ranges = head.headers.get("Accept-Ranges") == "bytes" and bool(etag)
    part = output.with_name(output.name + ".part")
    state = State(output.with_name(output.name + ".part.json"))
    segments = state.load(etag, size) if ranges and part.exists() else None
    resumed = segments is not None
    if segments is None:
        segments = plan(size, jobs if ranges else 1)
        with open(part, "wb") as f:
            f.truncate(size)
    start_done = sum(s.done for s in segments)
    transfer = board.transfer(output.name, size, start_done)
    throttle = Throttle(rate)
    progress_lock = threading.Lock()
    last_save = [time.monotonic()]
    stop = threading.Event()  # Ctrl-C: every range stops, its bytes recorded

    def fetch(segment: Segment) -> None:
        if segment.next >= segment.end:
            return
        wanted = dict(headers)
        if ranges:
            wanted["Range"] = f"bytes={segment.next}-{segment.end - 1}"
            wanted["If-Range"] = etag
        with requests.get(url, headers=wanted, stream=True, timeout=TIMEOUT) as resp:
            if resp.status_code == 200 and ranges:
                raise TransferFailed(f"{url}: the file changed on the server; run again")
            if resp.status_code not in (200, 206):
                raise TransferFailed(f"{url}: the server answered {resp.status_code}")
            fd = os.open(part, os.O_WRONLY)
            try:
                for chunk in resp.iter_content(CHUNK):
                    if stop.is_set():
                        return
                    os.pwrite(fd, chunk, segment.next)
                    segment.done += len(chunk)
                    throttle.spend(len(chunk))
                    with progress_lock:
                        transfer.advance(sum(s.done for s in segments))
                        if time.monotonic() - last_save[0] > SAVE_EVERY:
                            state.save(etag, size, segments)
                            last_save[0] = time.monotonic()
            finally:
                os.close(fd)

    pool = ThreadPoolExecutor(max_workers=len(segments) or 1)
    try:
        for future in [pool.submit(fetch, s) for s in segments]:
            future.result()
    except requests.RequestException:
        stop.set()
        raise TransferFailed(f"{url}: the connection failed; run again to resume") from None
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
        with contextlib.suppress(OSError):
            state.save(etag, size, segments)
    digest = verify(part, etag)
    os.replace(part, output)
    with contextlib.suppress(FileNotFoundError):
        state.path.unlink()
    return (start_done if resumed else 0), digest


def verify(part: Path, etag: str) -> str | None:
    """The sha256 spigot's strong ETag names, checked; None when the ETag is not one (a
    direct upload's S3 ETag): then there is nothing honest to check against."""
    match = _SHA256_ETAG.fullmatch(etag)
    if match is None:
        return None
    with open(part, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != match.group(1):
        part.unlink()
        raise TransferFailed(f"the download's sha256 is {digest}, not {match.group(1)}; removed")
    return digest
