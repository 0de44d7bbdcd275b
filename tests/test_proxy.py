"""The streaming proxy: signing, streaming, ranges, header hygiene, errors, and SSRF.

Test traffic only ever goes to loopback. Private, link-local and other ranges are checked on
the classifier directly and through a patched resolver whose connect step fails the test.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient, TestServer

from server.protocol import signing
from server.protocol.ssrf import Refused, check_url, literal_address, refusal
from server.proxy import decrypted, zerocopy
from server.proxy.upstream import Timeouts, guarded_session, open_upstream
from tests.conftest import (
    ROOT,
    ClientFactory,
    SpigotProcess,
    assert_byteranges,
    file_sha256,
    write_random,
)
from tests.test_deploy_nginx import self_signed
from tests.tools import require

BACKENDS = ("local",)  # not about storage: one backend is enough

Client = TestClient  # type: ignore[type-arg]
SECRET = "0123456789abcdef-test-secret-of-32+bytes"
BLOB = bytes(range(256)) * 4096 * 20  # 20 MiB, deterministic


# -- an upstream that can misbehave in every way the proxy must survive ---------------------


class Upstream:
    def __init__(self) -> None:
        self.connections = 0
        self.slow_sent = 0
        self.seen_headers: dict[str, str] = {}
        self.server: TestServer | None = None
        self.endless_ended = asyncio.Event()

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/blob", self.blob)
        r.add_get("/slow", self.slow)
        r.add_get("/drop", self.drop)
        r.add_get("/redirect/{n}", self.redirect)
        r.add_get("/status/{code}", self.status)
        r.add_get("/html", self.html)
        r.add_get("/video", self.video)
        r.add_get("/headers", self.headers)
        r.add_get("/hang-headers", self.hang_headers)
        r.add_get("/hang-body", self.hang_body)
        r.add_get("/chunked", self.chunked)
        r.add_get("/endless", self.endless)
        r.add_get("/gzipped", self.gzipped)
        return app

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(text="<p>hi</p>", content_type="text/html")

    async def video(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x00" * 10, content_type="video/mp4")

    async def blob(self, request: web.Request) -> web.StreamResponse:
        resp = web.Response(
            body=BLOB,
            content_type="application/octet-stream",
            headers={
                "ETag": '"blob"',
                "Set-Cookie": "session=secret",
                "X-Internal": "1",
                "Cache-Control": "max-age=60",
            },
        )
        return resp

    async def slow(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 200 * 65536
        await resp.prepare(request)
        for _ in range(200):
            await resp.write(b"s" * 65536)
            self.slow_sent += 65536
            await asyncio.sleep(0.02)
        return resp

    async def drop(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 4 << 20
        await resp.prepare(request)
        await resp.write(b"d" * (1 << 20))
        assert request.transport is not None
        request.transport.abort()
        return resp

    async def gzipped(self, request: web.Request) -> web.Response:
        """Stored compressed, sent as stored whatever the request accepts (as S3 does)."""
        return web.Response(
            body=gzip.compress(b"hello " * 1000),
            headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"},
        )

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """Declares 1 GiB and keeps sending until the connection is gone."""
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 1 << 30
        await resp.prepare(request)
        try:
            for _ in range(1 << 10):
                await resp.write(b"e" * (1 << 20))
        finally:
            self.endless_ended.set()
        return resp

    async def redirect(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = "/blob" if n == 0 else f"/redirect/{n - 1}"
        raise web.HTTPFound(target)

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="upstream says no")

    async def headers(self, request: web.Request) -> web.Response:
        self.seen_headers = dict(request.headers)
        return web.json_response(self.seen_headers)

    async def hang_headers(self, request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    async def hang_body(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 10 << 20
        await resp.prepare(request)
        await resp.write(b"h" * 65536)
        await asyncio.sleep(30)
        return resp

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b"c" * 65536)
        return resp


@pytest.fixture
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    """Served over TLS for the relay mode that needs it, plain HTTP otherwise."""
    up = Upstream()
    tls = "relay_mode" in request.fixturenames and request.getfixturevalue("relay_mode").tls
    up.server = TestServer(up.app(), host="127.0.0.1")
    await up.server.start_server(ssl=request.getfixturevalue("test_ca") if tls else None)
    original = up.server.handler.connection_made  # type: ignore[union-attr]

    def counting(*args: Any, **kwargs: Any) -> Any:
        up.connections += 1
        return original(*args, **kwargs)

    up.server.handler.connection_made = counting  # type: ignore[method-assign,union-attr]
    yield up
    await up.server.close()


def link(url: str, secret: str = SECRET, ttl: int = 600) -> str:
    return "/proxy?" + signing.signed_query(secret, url, int(time.time()) + ttl)


@pytest.fixture
async def proxy(make_client: ClientFactory) -> Client:
    """Signed links, private upstreams allowed: loopback is where the test upstream lives."""
    return await make_client(secret=(SECRET,), insecure_proxy_allow_private=True)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A TLS upstream's server context, its self-signed certificate trusted by this
    process's aiohttp clients as SSL_CERT_FILE makes a spigot process trust it."""
    cert, key = self_signed(tmp_path_factory.mktemp("ca"), "localhost", "127.0.0.1")
    aiohttp.connector._SSL_CONTEXT_VERIFIED.load_verify_locations(cert)  # test-only trust
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass
class RelayMode:
    """How the body travels: spliced in the kernel (the default), decrypted into one
    window (a TLS upstream), or copied through aiohttp's reader. `spliced` and `decrypted`
    record the bodies each of the first two took, so a test can tell which ran."""

    name: str
    spliced: list[int]
    decrypted: list[int]

    @property
    def no_splice(self) -> bool:
        return self.name == "copied"

    @property
    def tls(self) -> bool:
        return self.name == "decrypted"

    def check(self, *, fast: bool = True) -> None:
        """That the mode's own way took every body, or (`fast=False`) that neither fast
        way ran, as for a body already read with the headers."""
        took = {"spliced": self.spliced, "decrypted": self.decrypted}
        for name, counts in took.items():
            if fast and name == self.name:
                assert counts and all(count > 0 for count in counts), f"{name} never ran"
            else:
                assert counts == [], f"{name} ran"


@pytest.fixture(params=["spliced", "decrypted", "copied"])
def relay_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RelayMode:
    mode = RelayMode(request.param, spliced=[], decrypted=[])
    real_move = zerocopy.Splice.move
    real_decrypted = decrypted.relay_decrypted

    async def splicing(splice: zerocopy.Splice, count: int, idle: float) -> None:
        mode.spliced.append(count)
        await real_move(splice, count, idle)

    async def decrypting(
        request: web.Request, resp: web.StreamResponse, up: aiohttp.ClientResponse, *rest: Any
    ) -> int:
        mode.decrypted.append(up.content_length or 0)
        return await real_decrypted(request, resp, up, *rest)

    monkeypatch.setattr(zerocopy.Splice, "move", splicing)
    monkeypatch.setattr(decrypted, "relay_decrypted", decrypting)
    return mode


@pytest.fixture
async def relaying(make_client: ClientFactory, relay_mode: RelayMode) -> Client:
    """The proxy fixture, once for each way of relaying the body."""
    return await make_client(
        secret=(SECRET,), insecure_proxy_allow_private=True, proxy_no_splice=relay_mode.no_splice
    )


# -- streaming ----------------------------------------------------------------------------


async def test_streams_byte_identical_with_clean_headers(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    resp = await relaying.get(link(upstream.url("/blob")))
    assert resp.status == 200
    data = await resp.read()
    assert hashlib.sha256(data).digest() == hashlib.sha256(BLOB).digest()
    assert resp.headers["Content-Length"] == str(len(BLOB))
    assert resp.headers["ETag"] == '"blob"'
    assert resp.headers["Cache-Control"] == "max-age=60"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in resp.headers and "X-Internal" not in resp.headers
    relay_mode.check()


async def test_out_of_descriptors_the_body_is_copied_instead(
    proxy: Client,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def exhausted(*_: object) -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe2", exhausted)
    resp = await proxy.get(link(upstream.url("/blob")))
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).digest() == hashlib.sha256(BLOB).digest()
    assert "copying a proxied body instead of splicing it" in caplog.text


async def test_connections_stay_usable_after_a_relayed_body(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    """Two requests on one client connection: the first body must end exactly where its
    Content-Length says, or the second response is garbage."""
    assert relaying.server.host is not None and relaying.server.port is not None
    reader, writer = await asyncio.open_connection(relaying.server.host, relaying.server.port)
    request = f"GET {link(upstream.url('/blob'))} HTTP/1.1\r\nHost: spigot\r\n\r\n".encode()
    for _ in range(2):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"Content-Length: {len(BLOB)}\r\n".encode() in head
        body = await reader.readexactly(len(BLOB))
        assert hashlib.sha256(body).digest() == hashlib.sha256(BLOB).digest()
    writer.close()
    relay_mode.check()
    assert len(relay_mode.spliced + relay_mode.decrypted) == (0 if relay_mode.no_splice else 2)


async def test_a_client_hanging_up_mid_body_releases_everything(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    """The upstream is let go and no descriptor is left open (splice duplicates sockets and
    opens a pipe for each body)."""
    assert relaying.server.host is not None and relaying.server.port is not None
    before = len(os.listdir("/proc/self/fd"))
    reader, writer = await asyncio.open_connection(relaying.server.host, relaying.server.port)
    writer.write(f"GET {link(upstream.url('/endless'))} HTTP/1.1\r\nHost: spigot\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    assert len(await reader.readexactly(4 << 20)) == 4 << 20
    writer.transport.abort()
    await asyncio.wait_for(upstream.endless_ended.wait(), 10)
    for _ in range(50):  # the proxy lets go of its side a moment later
        if len(os.listdir("/proc/self/fd")) <= before:
            break
        await asyncio.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= before
    relay_mode.check()


async def test_small_bodies_already_read_keep_the_upstream_connection(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    for _ in range(3):
        resp = await relaying.get(link(upstream.url("/video")))
        assert resp.status == 200 and await resp.read() == b"\x00" * 10
    relay_mode.check(fast=False)  # nothing was left to relay
    assert upstream.connections == 1


async def test_encoded_bodies_keep_their_content_encoding(
    proxy: Client, upstream: Upstream
) -> None:
    resp = await proxy.get(link(upstream.url("/gzipped")), auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == b"hello " * 1000


async def test_head(proxy: Client, upstream: Upstream) -> None:
    resp = await proxy.head(link(upstream.url("/blob")))
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(BLOB))
    assert await resp.read() == b""


async def test_first_byte_arrives_before_the_upstream_is_done(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    resp = await relaying.get(link(upstream.url("/slow")))
    first = await resp.content.readany()
    sent_then = upstream.slow_sent
    rest = await resp.read()
    total = 200 * 65536
    assert first and len(first) + len(rest) == total
    assert sent_then < total / 100  # the first byte came before 1% had left the upstream
    relay_mode.check()


async def test_request_header_hygiene(proxy: Client, upstream: Upstream) -> None:
    resp = await proxy.get(
        link(upstream.url("/headers")),
        headers={
            "Cookie": "session=stolen",
            "Authorization": "Bearer token",
            "Accept-Language": "fr",
            "X-Forwarded-For": "1.2.3.4",
        },
    )
    assert resp.status == 200
    seen = {k.lower() for k in upstream.seen_headers}
    assert "cookie" not in seen and "authorization" not in seen and "x-forwarded-for" not in seen
    assert upstream.seen_headers.get("Accept-Language") == "fr"


async def test_content_type_filter(make_client: ClientFactory, upstream: Upstream) -> None:
    client = await make_client(
        secret=(SECRET,),
        insecure_proxy_allow_private=True,
        proxy_content_types=("image/*", "video/*"),
    )
    assert (await client.get(link(upstream.url("/html")))).status == 415
    allowed = await client.get(link(upstream.url("/video")))
    assert allowed.status == 200 and await allowed.read() == b"\x00" * 10


async def test_size_limit(make_client: ClientFactory, upstream: Upstream) -> None:
    client = await make_client(
        secret=(SECRET,), insecure_proxy_allow_private=True, proxy_max_size=1 << 20
    )
    known = await client.get(link(upstream.url("/blob")))
    assert known.status == 413
    assert (await known.json())["error"]["code"] == "too_large"
    grows = await client.get(link(upstream.url("/chunked")))  # no Content-Length up front
    assert grows.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await grows.read()  # cut, and visibly so


# -- ranges and conditionals ----------------------------------------------------------------


@pytest.mark.parametrize("relay_mode", ["spliced", "copied"], indirect=True)  # plain upstream
async def test_ranges_and_conditionals_pass_through(
    make_client: ClientFactory, relay_mode: RelayMode, spigot: SpigotProcess, tmp_path: Path
) -> None:
    """spigot itself is the upstream here, since it answers multiple ranges."""
    src = tmp_path / "src.bin"
    write_random(src, 3 << 20)
    target = await asyncio.to_thread(curl_put, src, f"{spigot.url}/files/")
    data = src.read_bytes()
    client = await make_client(
        secret=(SECRET,), insecure_proxy_allow_private=True, proxy_no_splice=relay_mode.no_splice
    )
    whole = await client.get(link(target))
    assert whole.status == 200 and await whole.read() == data
    relay_mode.check()
    one = await client.get(link(target), headers={"Range": "bytes=100-199"})
    assert one.status == 206 and await one.read() == data[100:200]
    assert one.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert one.headers["Accept-Ranges"] == "bytes"
    multi = await client.get(link(target), headers={"Range": "bytes=0-9,1000-1009"})
    assert multi.status == 206
    assert multi.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert_byteranges(
        multi.headers["Content-Type"], await multi.read(), data, [(0, 10), (1000, 1010)]
    )
    etag = one.headers["ETag"]
    cached = await client.get(link(target), headers={"If-None-Match": etag})
    assert cached.status == 304 and await cached.read() == b""
    unsatisfiable = await client.get(link(target), headers={"Range": f"bytes={len(data)}-"})
    assert unsatisfiable.status == 416


def curl_put(path: Path, url: str) -> str:
    put = subprocess.run(
        [require("curl"), "-sS", "-T", str(path), url], capture_output=True, check=True, text=True
    )
    return str(json.loads(put.stdout)["url"])


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [(500, 502), (503, 502), (404, 404), (403, 403)])
async def test_upstream_errors(proxy: Client, upstream: Upstream, code: int, status: int) -> None:
    resp = await proxy.get(link(upstream.url(f"/status/{code}")))
    assert resp.status == status
    assert set((await resp.json())["error"]) == {"code", "message"}


async def test_upstream_dying_mid_stream_aborts_the_client(
    relaying: Client, relay_mode: RelayMode, upstream: Upstream
) -> None:
    resp = await relaying.get(link(upstream.url("/drop")))
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    relay_mode.check()


async def test_timeouts(
    make_client: ClientFactory, relay_mode: RelayMode, upstream: Upstream
) -> None:
    client = await make_client(
        secret=(SECRET,),
        insecure_proxy_allow_private=True,
        proxy_first_byte_timeout=0.5,
        proxy_idle_timeout=0.5,
        proxy_no_splice=relay_mode.no_splice,
    )
    slow_headers = await client.get(link(upstream.url("/hang-headers")))
    assert slow_headers.status == 504
    assert (await slow_headers.json())["error"]["code"] == "upstream_timeout"
    stalls = await client.get(link(upstream.url("/hang-body")))
    assert stalls.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await stalls.read()
    relay_mode.check()


async def test_unreachable_upstream_is_502(proxy: Client) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    resp = await proxy.get(link(f"http://127.0.0.1:{port}/"))
    assert resp.status == 502


async def test_redirects(proxy: Client, upstream: Upstream) -> None:
    ok = await proxy.get(link(upstream.url("/redirect/2")))  # three redirects
    assert ok.status == 200 and len(await ok.read()) == len(BLOB)
    too_many = await proxy.get(link(upstream.url("/redirect/3")))  # four
    assert too_many.status == 403
    assert "redirects" in (await too_many.json())["error"]["message"]


# -- signatures ---------------------------------------------------------------------------


async def test_signatures(make_client: ClientFactory, upstream: Upstream) -> None:
    client = await make_client(secret=(SECRET,), insecure_proxy_allow_private=True)
    url = upstream.url("/headers")
    good = link(url)
    assert (await client.get(good)).status == 200
    for bad in [
        f"/proxy?url={quote(url)}",
        good.replace("sig=", "sig=0"),
        link(url, secret="another-secret-that-is-32-bytes-long"),
        link(url, ttl=-5),
        link(url).replace(quote(url, safe=""), quote(url + "x", safe="")),
    ]:
        resp = await client.get(bad)
        assert resp.status == 403, bad
        assert (await resp.json())["error"]["code"] == "bad_signature"
    expired = await client.get(link(url, ttl=-5))
    assert (await expired.json())["error"]["message"] == "the link has expired"


async def test_no_secret_means_no_proxy(client: Client, upstream: Upstream) -> None:
    resp = await client.get(link(upstream.url("/blob")))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "proxy_disabled"


async def test_unsigned_mode(make_client: ClientFactory, upstream: Upstream) -> None:
    client = await make_client(insecure_proxy_unsigned=True, insecure_proxy_allow_private=True)
    assert (await client.get(f"/proxy?url={quote(upstream.url('/headers'))}")).status == 200


def test_sign_url_command() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "sign-url",
            "https://media.example/a.mp4",
            "--public-url",
            "https://files.example",
            "--expires-in",
            "1h",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={"SPIGOT_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(
        "https://files.example/proxy?url=https%3A%2F%2Fmedia.example%2Fa.mp4&expires="
    )
    query = dict(p.split("=", 1) for p in line.split("?", 1)[1].split("&"))
    assert (
        signing.verify(
            (SECRET,), "https://media.example/a.mp4", query["expires"], query["sig"], time.time()
        )
        is None
    )
    assert 3500 < int(query["expires"]) - time.time() <= 3600


# -- SSRF -----------------------------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "localhost",
    "0.0.0.0",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_refused_before_connecting(
    make_client: ClientFactory, upstream: Upstream, host: str
) -> None:
    client = await make_client(secret=(SECRET,))  # default: private targets refused
    assert upstream.server is not None
    port = upstream.server.port
    resp = await client.get(link(f"http://{host}:{port}/blob"))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "refused_target"
    assert upstream.connections == 0


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("0.1.2.3", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("ff02::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("2002:7f00:1::", True),
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_address_classification(address: str, refused: bool) -> None:
    assert (refusal(ipaddress.ip_address(address)) is not None) is refused


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "http://@example.com/",
        "http:///nohost",
        "gopher://x",
        "http://[::1",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url)


def test_numeric_spellings() -> None:
    for spelling in ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::ffff:127.0.0.1]"]:
        address = literal_address(spelling)
        assert address is not None and refusal(address) is not None
    assert literal_address("example.com") is None


class FakeResolver(AbstractResolver):
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


def no_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a connection was attempted: {args} {kwargs}")

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", fail)


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.1"], ["169.254.169.254"], ["100.64.1.1"], ["fd00::1"], ["8.8.8.8", "192.168.0.1"]],
)
async def test_resolver_answers_are_checked(
    monkeypatch: pytest.MonkeyPatch, answers: list[str]
) -> None:
    no_connecting(monkeypatch)
    session = guarded_session(
        Timeouts(), allow_private=False, resolver=FakeResolver({"internal.example": answers})
    )
    try:
        with pytest.raises(Refused):
            await open_upstream(session, "GET", "http://internal.example/x", {}, Timeouts(), False)
    finally:
        await session.close()


class OneRedirect:
    """A session whose first answer redirects to loopback; a second request fails the test."""

    def __init__(self) -> None:
        self.calls = 0

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls += 1
        assert self.calls == 1, "the redirect target was requested"

        class Redirect:
            status = 302
            headers = {"Location": "http://127.0.0.1:9/admin"}

            def release(self) -> None:
                pass

        return Redirect()


async def test_redirect_to_loopback_is_refused() -> None:
    session = OneRedirect()
    with pytest.raises(Refused, match="loopback"):
        await open_upstream(session, "GET", "http://public.example/x", {}, Timeouts(), False)  # type: ignore[arg-type]
    assert session.calls == 1


# -- a real segmented client ----------------------------------------------------------------


def test_aria2c_through_the_proxy(tmp_path: Path, data_dir: Path) -> None:
    """aria2c -x4 fetching from spigot through spigot's proxy: byte-identical."""
    from tests.conftest import start_spigot, stop_spigot

    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    origin = start_spigot(origin_dir)
    front = start_spigot(data_dir, "--insecure-proxy-allow-private", "--insecure-proxy-unsigned")
    try:
        src = tmp_path / "movie.bin"
        digest = write_random(src, 12 << 20)
        target = curl_put(src, f"{origin.url}/files/")
        out = tmp_path / "dl"
        result = subprocess.run(
            [
                require("aria2c"),
                "-x4",
                "-s4",
                "--min-split-size=1M",
                "--file-allocation=none",
                "--console-log-level=warn",
                "--summary-interval=0",
                "-d",
                str(out),
                "-o",
                "got.bin",
                f"{front.url}/proxy?url={quote(target, safe='')}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert file_sha256(out / "got.bin") == digest
    finally:
        stop_spigot(front)
        stop_spigot(origin)
