"""A fault-injecting HTTP proxy for tests: it stands between spigot and an S3 server
(ThreadedMotoServer) and, by a plan the test changes as it goes, answers some requests
with S3's 500 or 503 SlowDown, cuts a body mid-way, or adds latency.

It runs its own event loop in a thread, so it serves a spigot process and in-process
apps alike. Requests are matched by S3 operation, told from the method and query
(`?partNumber=` is UploadPart, `?uploads` CreateMultipartUpload, and so on).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error.</Message></Error>"
)


def operation(request: web.Request) -> str:
    q = request.query
    match request.method:
        case "PUT" if "partNumber" in q:
            return "UploadPart"
        case "PUT":
            return "PutObject"
        case "POST" if "uploads" in q:
            return "CreateMultipartUpload"
        case "POST" if "uploadId" in q:
            return "CompleteMultipartUpload"
        case "DELETE" if "uploadId" in q:
            return "AbortMultipartUpload"
        case "DELETE":
            return "DeleteObject"
        case "GET" if "uploads" in q:
            return "ListMultipartUploads"
        case "GET" if "uploadId" in q:
            return "ListParts"
        case "GET" if request.path.count("/") <= 1:
            return "ListObjects"
        case "GET":
            return "GetObject"
        case "HEAD":
            return "HeadObject"
    return request.method


@dataclass
class Fault:
    """What to do to the next `times` requests for `op` (-1: all of them)."""

    op: str
    kind: str  # "slowdown" (503), "internal" (500), "cut" (the answer's body stops), "slow"
    times: int = 1
    after_bytes: int = 0  # for "cut"
    delay: float = 0.0  # for "slow"
    key_part: str = ""  # only requests whose path contains this


@dataclass
class FaultyProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (operation, what was done)
    url: str = ""

    def add(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def clear(self) -> None:
        self.faults.clear()

    def _take(self, request: web.Request, op: str) -> Fault | None:
        for fault in self.faults:
            if fault.op == op and fault.key_part in request.path and fault.times != 0:
                if fault.times > 0:
                    fault.times -= 1
                return fault
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        op = operation(request)
        fault = self._take(request, op)
        self.seen.append((op, fault.kind if fault else "passed"))
        if fault is not None and fault.kind in ("slowdown", "internal"):
            await request.read()
            body, status = (SLOW_DOWN, 503) if fault.kind == "slowdown" else (INTERNAL, 500)
            return web.Response(status=status, body=body, content_type="application/xml")
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "expect")}
        headers["Host"] = request.headers.get("Host", "")
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
            auto_decompress=False,
        ) as upstream:
            skip = {"transfer-encoding", "content-encoding", "connection"}
            out = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in skip},
            )
            if upstream.content_length is not None:
                out.content_length = upstream.content_length
            await out.prepare(request)
            sent = 0
            async for chunk in upstream.content.iter_chunked(64 << 10):
                if (
                    fault is not None
                    and fault.kind == "cut"
                    and sent + len(chunk) > fault.after_bytes
                ):
                    await out.write(chunk[: fault.after_bytes - sent])
                    assert request.transport is not None
                    request.transport.abort()  # a reset mid-body
                    return out
                await out.write(chunk)
                sent += len(chunk)
            await out.write_eof()
            return out

    _session: aiohttp.ClientSession | None = None


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(upstream)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    state: dict[str, web.AppRunner] = {}

    async def start() -> None:
        proxy._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 40)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        proxy.url = f"http://127.0.0.1:{port}"
        state["runner"] = runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield proxy
    finally:

        async def stop() -> None:
            await state["runner"].cleanup()
            assert proxy._session is not None
            await proxy._session.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        time.sleep(0)
