"""Bad HTTP at the socket, against a real `spigot serve`: smuggling attempts, broken framing,
huge headers, and hypothesis-made request heads. None gets a 5xx, none crashes the server
or leaks a descriptor, and a normal request is answered after every one.

Malformed HTTP is answered by aiohttp's parser before any application code runs; its
answer carries spigot's JSON error body all the same (server/serving/bad_http.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SpigotProcess, start_spigot, stop_spigot


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpigotProcess]:
    spigot = start_spigot(
        tmp_path_factory.mktemp("raw"), "--header-timeout", "1s", "--network-timeout", "1s"
    )
    yield spigot
    stop_spigot(spigot)


def read_to_end(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes, resets, or is silent for `seconds`."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def exchange(server: SpigotProcess, data: bytes, wait: float = 3.0) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        with contextlib.suppress(OSError):  # refused half-way: its answer is still there
            sock.sendall(data)
        return read_to_end(sock, wait)


def statuses(answer: bytes) -> list[int]:
    found = []
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and line[9:12].isdigit():  # aiohttp's 400 is 1.0
            found.append(int(line[9:12]))
    return found


def still_serving(server: SpigotProcess) -> None:
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert resp.status == 200


def descriptors(server: SpigotProcess) -> int:
    return len(os.listdir(f"/proc/{server.pid}/fd"))


def test_content_length_with_transfer_encoding_is_refused(server: SpigotProcess) -> None:
    """The classic CL.TE smuggle: the second request must never be seen as one."""
    smuggle = (
        b"POST /files/?name=a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /files/ HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = exchange(server, smuggle)
    assert statuses(answer) == [400]
    assert b"\r\nServer: spigot\r\n" in answer and b"aiohttp/" not in answer  # no versions
    with urllib.request.urlopen(f"{server.url}/files/", timeout=5) as resp:
        assert resp.read() == b"[]"  # nothing was stored by it
    still_serving(server)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"PUT /files/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"PUT /files/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffffffffffff\r\nx\r\n0\r\n\r\n",
        b"PUT /files/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 5000 + b"\r\n",
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # TLS at plain HTTP
        b"GET /files/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /files/?name=%ff%fe%00.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
    ],
    ids=[
        "two-lengths",
        "chunk-overflow",
        "te-list",
        "huge-header",
        "many-headers",
        "version",
        "tls",
        "bad-utf8-path",
        "bad-utf8-name",
    ],
)
def test_broken_framing_gets_a_4xx(server: SpigotProcess, request_bytes: bytes) -> None:
    before = descriptors(server)
    answer = exchange(server, request_bytes)
    got = statuses(answer)
    assert got and all(s < 500 for s in got), got
    if got[-1] == 400:  # the parser's own refusal, in spigot's error shape
        head, _, body = answer.rpartition(b"\r\n\r\n")
        assert b"Content-Type: application/json" in head
        error = json.loads(body)["error"]
        assert error["code"] in ("bad_http", "incomplete_body", "bad_name"), error
        assert error["message"]
    still_serving(server)
    assert descriptors(server) <= before + 1


def test_the_parser_s_400_is_json_and_quotes_no_raw_bytes(server: SpigotProcess) -> None:
    answer = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\x01: y\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] == "bad_http"
    assert error["message"].startswith("malformed HTTP request: ")
    assert "\n" not in error["message"] and "\\x01" not in error["message"]


TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_/?=%&.0123456789"), max_size=30)
HEADER = st.tuples(
    st.sampled_from(["Host", "Content-Length", "Transfer-Encoding", "Range", "If-Range",
                     "Upload-Offset", "Upload-Length", "Tus-Resumable", "Upload-Metadata",
                     "Content-Type", "Expect", "Authorization", "X-Junk"]),
    st.one_of(TOKEN, st.integers(-5, 1 << 70).map(str), st.binary(max_size=20).map(
        lambda b: b.decode("latin-1"))),
)  # fmt: skip


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"]),
    path=st.sampled_from(["/files/", "/files/abc", "/files/AAAAAAAAAAAAAAAAAAAAAA", "/s3/params",
                          "/imports", "/sign", "/proxy", "/"]).flatmap(
        lambda p: TOKEN.map(lambda q: p + q)),
    headers=st.lists(HEADER, max_size=6),
    body=st.binary(max_size=200),
)  # fmt: skip
def test_made_up_requests_never_get_a_5xx(
    server: SpigotProcess, method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    head = f"{method} {path} HTTP/1.1\r\nConnection: close\r\n".encode("latin-1")
    head += b"".join(f"{k}: {v}\r\n".encode("latin-1", "replace") for k, v in headers)
    got = statuses(exchange(server, head + b"\r\n" + body, wait=5.0))
    assert all(s < 500 for s in got), (got, head)


def test_the_server_is_whole_after_the_fuzzing(server: SpigotProcess, tmp_path: Path) -> None:
    still_serving(server)
    assert server.proc.poll() is None


@pytest.mark.parametrize("expect", [b"\x80", b"teapot"])
@pytest.mark.parametrize("target", [b"GET /files/", b"GET /imports", b"GET /nowhere"])
def test_an_unmet_expectation_is_a_json_417(
    server: SpigotProcess, expect: bytes, target: bytes
) -> None:
    """aiohttp's own answer was plain text with the value in it, and a 500 for non-UTF-8:
    also where no route or no method matched (a 404 or 405 route aiohttp makes itself)."""
    head = target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: " + expect
    answer = exchange(server, head + b"\r\n\r\n")
    assert statuses(answer) == [417]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "expectation_failed"


@pytest.mark.parametrize(("target", "status"), [(b"PUT /imports", 405), (b"POST /nowhere", 404)])
def test_a_request_no_route_takes_gets_no_100(
    server: SpigotProcess, target: bytes, status: int
) -> None:
    """Nothing will read its body, so it is not asked for: the JSON error comes at once,
    and the connection closes rather than wait for a body the client holds back."""
    head = target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    answer = exchange(server, head)
    assert statuses(answer) == [status]
    assert b"\r\nConnection: close\r\n" in answer.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] in (
        "method_not_allowed", "not_found"
    )  # fmt: skip


def test_100_continue_on_a_route_without_a_body_goes_on(server: SpigotProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n"
    assert statuses(exchange(server, head)) == [100, 200]


def test_an_http_1_0_client_gets_no_interim_100(server: SpigotProcess) -> None:
    """A 100 is an HTTP/1.1 answer; an HTTP/1.0 client that sends Expect gets only the
    final one, on upload routes and the rest alike."""
    put = b"PUT /files/old.txt HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"
    assert statuses(exchange(server, put)) == [201]
    get = b"GET /healthz HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"
    assert statuses(exchange(server, get)) == [200]
