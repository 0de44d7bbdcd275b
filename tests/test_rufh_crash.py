"""Crash safety for the IETF draft: SIGKILL spigot while a creation's body is flowing,
restart it on the same storage, learn the offset with HEAD, send the rest; the file must be
byte-identical. On both backends. Every progress 104 seen before the kill promised that its
bytes need not be sent again: the restarted server must hold at least that many."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.conftest import SpigotProcess, file_sha256, start_spigot, stop_spigot, write_random
from tests.rufh_client import Answer, Exchange, exchange

SIZE = 48 * 1024 * 1024
PIECE = 1024 * 1024
DRAFT = {"Upload-Draft-Interop-Version": "9"}


def pieces(source: Path, start: int = 0) -> list[bytes]:
    with open(source, "rb") as f:
        f.seek(start)
        return list(iter(lambda: f.read(PIECE), b""))


def head_when_free(server: SpigotProcess, path: str) -> Answer:
    """HEAD, waiting out a dead instance's S3 lease (423) if need be."""
    for _ in range(100):
        ex = exchange(server.url, "HEAD", path, DRAFT)
        assert ex.final is not None
        if ex.final.status != 423:
            return ex.final
        time.sleep(0.1)
    raise AssertionError("the upload stayed locked")


def test_sigkill_mid_creation_then_resume(
    data_dir: Path, tmp_path: Path, backend: str, backend_args: tuple[str, ...]
) -> None:
    source = tmp_path / "big.bin"
    digest = write_random(source, SIZE)
    args = (*backend_args, "--max-request-size", "0")
    # Paced so the kill comes mid-body, once something is durable: on S3 that is a whole
    # 8 MiB part in moto, which takes longer than a splice step on disk.
    pause, kill_after = 0.08, 2.0
    if backend == "s3":
        args = (*args, "--s3-lock-ttl", "2s")
        pause, kill_after = 0.12, 3.5
    server = start_spigot(data_dir, *args)
    try:
        seen: list[Exchange] = []
        sender = threading.Thread(
            target=lambda: seen.append(
                exchange(
                    server.url,
                    "POST",
                    "/files/",
                    {**DRAFT, "Upload-Complete": "?1", "Content-Type": "video/mp4"},
                    pieces(source),
                    pause=pause,
                )
            )
        )
        sender.start()
        time.sleep(kill_after)  # the body takes 48 pauses at the least: it is still coming
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        sender.join()
        ex = seen[0]
        assert ex.final is None, "the body finished before the kill"
        assert ex.interim, "no 104 came before the kill"
        path = ex.interim[0]["Location"].removeprefix(server.url)
        promised = max((int(a["Upload-Offset"]) for a in ex.interim[1:]), default=0)

        server = start_spigot(data_dir, *args)
        state = head_when_free(server, path)
        assert state.status == 204
        assert state["Upload-Complete"] == "?0"
        offset = int(state["Upload-Offset"])
        assert 0 < promised <= offset < SIZE, (promised, offset)

        done = exchange(
            server.url,
            "PATCH",
            path,
            {
                **DRAFT,
                "Upload-Complete": "?1",
                "Upload-Offset": str(offset),
                "Content-Type": "application/partial-upload",
            },
            pieces(source, offset),
        ).final
        assert done is not None and done.status == 201, done
        assert done["Upload-Offset"] == str(SIZE)

        out = tmp_path / "back.bin"
        got = exchange(server.url, "GET", path).final
        assert got is not None and got.status == 200
        out.write_bytes(got.body)
        assert file_sha256(out) == digest
        assert got["Content-Type"] == "video/mp4"
    finally:
        stop_spigot(server)
