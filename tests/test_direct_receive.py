"""Bodies taken from the socket straight into the file (server/bodies/direct.py).

Every test runs against a server that takes bodies so (on uvloop, the default), one started
with --no-direct-receive and one on asyncio's own loop (--event-loop asyncio), and asserts
the same outcome from each: the direct path is an optimisation, never a change of
behaviour. The one visible difference is asserted too: after such a body the connection
closes (`Connection: close`), since aiohttp's parser still waits for the bytes taken past it.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.bodies.direct import MOVE_MIN, DirectReceiver
from tests.tools import mounted_tmpfs

from .conftest import SpigotProcess, start_spigot, stop_spigot, stored_files
from .test_raw_http import read_to_end

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
NETWORK_TIMEOUT = 2


@pytest.fixture(params=["direct", "through-aiohttp", "asyncio"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(data_dir: Path, mode: str) -> Iterator[SpigotProcess]:
    flags = ["--network-timeout", f"{NETWORK_TIMEOUT}s", "--max-request-size", "1G"]
    if mode == "through-aiohttp":
        flags.append("--no-direct-receive")
    if mode == "asyncio":  # bodies are taken from asyncio's transports too
        flags += ["--event-loop", "asyncio"]
    spigot = start_spigot(data_dir, *flags)
    yield spigot
    stop_spigot(spigot)


def connect(server: SpigotProcess) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def request(
    server: SpigotProcess, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = connect(server)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read()
    finally:
        conn.close()


def create(server: SpigotProcess, length: int) -> str:
    status, headers, _ = request(server, "POST", "/files/", **TUS, **{"Upload-Length": str(length)})
    assert status == 201
    return "/files/" + headers["Location"].rsplit("/", 1)[1]


def offset_of(server: SpigotProcess, path: str) -> int:
    status, headers, _ = request(server, "HEAD", path, **TUS)
    assert status == 200
    return int(headers["Upload-Offset"])


def patch(server: SpigotProcess, path: str, offset: int, data: bytes, **extra: str) -> tuple:
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        **extra,
    }
    return request(server, "PATCH", path, data, **headers)


def download(server: SpigotProcess, path: str) -> bytes:
    status, _, body = request(server, "GET", path)
    assert status == 200
    return body


def patch_head(path: str, length: int) -> bytes:
    """A tus PATCH's head from offset 0, for a raw socket to send part of its body after."""
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def send_part(server: SpigotProcess, head: bytes, body: bytes) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head + body)
    return sock


def answer_of(sock: socket.socket, seconds: float) -> bytes:
    with sock:
        return read_to_end(sock, seconds)


def test_a_large_one_shot_body_round_trips_and_ends_its_connection(
    server: SpigotProcess, mode: str
) -> None:
    data = os.urandom(8 * MIB + 12345)
    status, headers, body = request(server, "PUT", "/files/big.bin", data)
    assert status == 201
    info = json.loads(body)
    assert info["size"] == len(data)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(download(server, f"/files/{info['id']}")).digest() == (
        hashlib.sha256(data).digest()
    )
    assert (headers.get("Connection") == "close") is (mode != "through-aiohttp")


def test_a_body_under_the_threshold_keeps_its_connection(server: SpigotProcess) -> None:
    data = os.urandom(MOVE_MIN - 1)
    status, headers, body = request(server, "PUT", "/files/small.bin", data)
    assert status == 201
    assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()
    assert "Connection" not in headers


def test_tus_patches_continue_one_sha256(server: SpigotProcess) -> None:
    data = os.urandom(12 * MIB)
    path = create(server, len(data))
    status, headers, _ = patch(server, path, 0, data[: 5 * MIB])
    assert (status, headers["Upload-Offset"]) == (204, str(5 * MIB))
    status, headers, _ = patch(server, path, 5 * MIB, data[5 * MIB :])
    assert (status, headers["Upload-Offset"]) == (204, str(len(data)))
    assert download(server, path) == data
    assert listed_sha256(server, path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [MOVE_MIN - 1, 3 * MIB])
def test_an_encoded_body_is_stored_as_sent(server: SpigotProcess, size: int) -> None:
    """Content-Encoding is not decoded, as nginx and tusd do not: the bytes stored, their
    sha256 and a tus offset are those the client sent. aiohttp used to decode gzip, so a
    gzip body no longer matched its Content-Length, and bytes that were not gzip were a
    500."""
    packed = gzip.compress(os.urandom(size // 2) + bytes(size), mtime=0)
    for data in (packed, os.urandom(size)):  # gzip, and bytes that only claim to be
        status, _, body = request(server, "PUT", "/files/c.gz", data, **GZIP)
        assert status == 201, body
        info = json.loads(body)
        assert (info["size"], info["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert download(server, f"/files/{info['id']}") == data
        path = create(server, len(data) + 1)
        status, headers, _ = patch(server, path, 0, data, **GZIP)
        assert (status, headers["Upload-Offset"]) == (204, str(len(data)))
        status, headers, _ = patch(server, path, len(data), b"!")
        assert (status, headers["Upload-Offset"]) == (204, str(len(data) + 1))
        assert download(server, path) == data + b"!"


GZIP = {"Content-Encoding": "gzip"}


def listed_sha256(server: SpigotProcess, path: str) -> str:
    """The sha256 spigot computed while the bytes arrived, as GET /files/ lists it."""
    status, _, body = request(server, "GET", "/files/")
    assert status == 200
    (found,) = [f for f in json.loads(body) if f["id"] == path.rsplit("/", 1)[1]]
    return str(found["sha256"])


def test_a_cut_patch_keeps_exactly_the_bytes_that_arrived(server: SpigotProcess) -> None:
    data = os.urandom(8 * MIB)
    path = create(server, len(data))
    head = patch_head(path, len(data))
    sent = 3 * MIB + 777
    sock = send_part(server, head, data[:sent])
    time.sleep(0.5)
    sock.close()  # everything sent was delivered before the FIN
    deadline = time.monotonic() + 10
    while offset_of(server, path) != sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert offset_of(server, path) == sent
    status, headers, _ = patch(server, path, sent, data[sent:])
    assert (status, headers["Upload-Offset"]) == (204, str(len(data)))
    assert download(server, path) == data
    assert listed_sha256(server, path) == hashlib.sha256(data).hexdigest()  # across the cut


def test_a_cut_one_shot_body_leaves_nothing(server: SpigotProcess, data_dir: Path) -> None:
    head = b"PUT /files/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (8 * MIB)
    sock = send_part(server, head, os.urandom(3 * MIB))
    sock.close()
    # Generous: in one full-suite run the upload was still being created after 10 s, its
    # sidecar's temp file written but not yet renamed (the disk busy with other tests).
    deadline = time.monotonic() + 30
    while stored_files(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_files(data_dir) == []


def test_a_stalled_body_gets_a_json_408_and_keeps_its_bytes(server: SpigotProcess) -> None:
    data = os.urandom(4 * MIB)
    path = create(server, len(data))
    head = patch_head(path, len(data))
    sock = send_part(server, head, data[: 2 * MIB])
    started = time.monotonic()
    answer = answer_of(sock, NETWORK_TIMEOUT + 8)
    assert time.monotonic() - started < NETWORK_TIMEOUT + 5
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"
    assert offset_of(server, path) == 2 * MIB


def test_a_checksummed_patch_is_all_or_nothing(server: SpigotProcess) -> None:
    data = os.urandom(3 * MIB)
    path = create(server, len(data))
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    status, _, body = patch(server, path, 0, data, **{"Upload-Checksum": f"sha1 {wrong}"})
    assert status == 460
    assert json.loads(body)["error"]["code"] == "checksum_mismatch"
    assert offset_of(server, path) == 0
    right = base64.b64encode(hashlib.sha1(data).digest()).decode()
    status, headers, _ = patch(server, path, 0, data, **{"Upload-Checksum": f"sha1 {right}"})
    assert (status, headers["Upload-Offset"]) == (204, str(len(data)))
    assert download(server, path) == data


def test_a_patch_declared_past_the_length_is_refused_before_a_byte(
    server: SpigotProcess,
) -> None:
    """As tusd: what fits is not kept, for it would complete the upload with bytes sent
    for something else."""
    data = os.urandom(3 * MIB)
    path = create(server, 2 * MIB)
    status, _, body = patch(server, path, 0, data)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "length_exceeded"
    assert offset_of(server, path) == 0
    status, headers, _ = patch(server, path, 0, data[: 2 * MIB])
    assert (status, headers["Upload-Offset"]) == (204, str(2 * MIB))
    assert download(server, path) == data[: 2 * MIB]


def test_bodies_are_taken_into_a_tmpfs(tmp_path: Path) -> None:
    """tmpfs (shmem) has write paths of its own; production /tmp and ramdisks are it."""
    with mounted_tmpfs(tmp_path / "ram", "64m") as where:
        server = start_spigot(where, "--max-request-size", "1G")
        try:
            data = os.urandom(16 * MIB + 1)
            status, headers, body = request(server, "PUT", "/files/ram.bin", data)
            assert status == 201 and headers["Connection"] == "close"
            info = json.loads(body)
            assert info["sha256"] == hashlib.sha256(data).hexdigest()
            assert download(server, f"/files/{info['id']}") == data
        finally:
            stop_spigot(server)


class Recorder:
    def __init__(self) -> None:
        self.seen = bytearray()

    def update(self, data: bytes | memoryview) -> None:
        self.seen += data


def test_the_receiver_writes_and_shows_the_sinks_exactly_what_arrived(tmp_path: Path) -> None:
    """Steps end "dry" when the socket has nothing at hand and "closed" at the client's FIN;
    the file and every sink get the same bytes, in order, at the position given."""
    left, right = socket.socketpair()
    data = os.urandom(3 * MIB + 5)
    target = tmp_path / "out"
    fd = os.open(target, os.O_RDWR | os.O_CREAT)
    receiver = DirectReceiver(right.fileno())
    sinks = [Recorder(), Recorder()]
    states = set()
    try:
        right.setblocking(False)
        left.setblocking(False)
        receiver.write(fd, 10, b"head", sinks)
        sent = 0
        while receiver.moved < 4 + len(data):
            if sent < len(data):
                with contextlib.suppress(BlockingIOError):
                    sent += left.send(data[sent : sent + MIB])
            at = 10 + receiver.moved
            states.add(receiver.step(fd, at, 4 + len(data) - receiver.moved, sinks))
        assert receiver.moved == receiver.received + 4 == 4 + len(data)
        assert receiver.step(fd, 10 + receiver.moved, 1, sinks) == "dry"
        left.close()
        assert receiver.step(fd, 10 + receiver.moved, 1, sinks) == "closed"
    finally:
        receiver.close()
        os.close(fd)
        right.close()
    assert "full" in states
    assert target.read_bytes() == b"\0" * 10 + b"head" + data
    assert [bytes(sink.seen) for sink in sinks] == [b"head" + data] * 2


def test_a_failed_write_counts_and_shows_only_what_reached_the_file(tmp_path: Path) -> None:
    """A full disk part-way: `moved` and the sinks stop at the bytes the file holds."""
    left, right = socket.socketpair()
    receiver = DirectReceiver(right.fileno())
    sink = Recorder()
    fd = os.open(tmp_path / "out", os.O_RDONLY | os.O_CREAT)  # every write fails (EBADF)
    try:
        left.sendall(os.urandom(64 << 10))
        with pytest.raises(OSError):
            receiver.step(fd, 0, 64 << 10, [sink])
        assert (receiver.moved, receiver.received, bytes(sink.seen)) == (0, 64 << 10, b"")
    finally:
        receiver.close()
        os.close(fd)
        left.close()
        right.close()
