"""tus 1.0: one test per status code and header rule spigot promises."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

import pytest
from aiohttp.test_utils import TestClient

from server.context import LIFECYCLE, STORE
from server.sweeper import finish_stored, sweep_once
from tests.conftest import ClientFactory, sha256

Client = TestClient  # type: ignore[type-arg]
TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


async def create(client: Client, length: int | None, **headers: str) -> str:
    h = {**TUS, **headers}
    if length is not None:
        h["Upload-Length"] = str(length)
    resp = await client.post("/files/", headers=h)
    assert resp.status == 201, await resp.text()
    return resp.headers["Location"].rsplit("/", 1)[1]


async def patch(client: Client, upload_id: str, offset: int, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    return await client.patch(
        f"/files/{upload_id}", data=body, headers={**PATCH, "Upload-Offset": str(offset), **headers}
    )


async def head(client: Client, upload_id: str):  # type: ignore[no-untyped-def]
    return await client.head(f"/files/{upload_id}", headers=TUS)


async def start_raw_patch(client: Client, upload_id: str, length: int, sent: bytes):  # type: ignore[no-untyped-def]
    """A PATCH announcing `length` bytes that sends only `sent`: the client then stalls."""
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"PATCH /files/{upload_id} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
        + sent
    )
    await writer.drain()
    return writer


async def error_code(resp) -> str:  # type: ignore[no-untyped-def]
    return str((await resp.json())["error"]["code"])


# -- discovery -----------------------------------------------------------------------------


async def test_options_advertises_everything(client: Client) -> None:
    resp = await client.options("/files/")
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Extension"] == (
        "creation,creation-with-upload,creation-defer-length,termination,"
        "concatenation,checksum,expiration"
    )
    assert resp.headers["Tus-Max-Size"] == str(1024**4)
    assert resp.headers["Tus-Checksum-Algorithm"] == "sha1,md5,sha256,crc32"


async def test_unsupported_version_is_412(client: Client) -> None:
    resp = await client.post("/files/", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "1"})
    assert resp.status == 412
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert await error_code(resp) == "unsupported_tus_version"


# -- creation ------------------------------------------------------------------------------


async def test_create_then_upload_in_chunks(client: Client) -> None:
    body = os.urandom(300_000)
    meta = f"filename {b64('report.pdf')},filetype {b64('application/pdf')}"
    resp = await client.post(
        "/files/", headers={**TUS, "Upload-Length": str(len(body)), "Upload-Metadata": meta}
    )
    assert resp.status == 201
    location = resp.headers["Location"]
    assert location.startswith(f"http://127.0.0.1:{client.port}/files/")
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    expires = parsedate_to_datetime(resp.headers["Upload-Expires"]).timestamp()
    assert abs(expires - (time.time() + 86400)) < 5
    upload_id = location.rsplit("/", 1)[1]
    offset = 0
    for chunk in (body[:100_000], body[100_000:250_000], body[250_000:]):
        r = await patch(client, upload_id, offset, chunk)
        assert r.status == 204
        offset += len(chunk)
        assert r.headers["Upload-Offset"] == str(offset)
        assert r.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" not in r.headers  # finished uploads do not expire
    got = await client.get(f"/files/{upload_id}")
    assert got.status == 200 and await got.read() == body
    assert got.headers["ETag"] == f'"{sha256(body)}"'
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"] == 'inline; filename="report.pdf"'


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 400, "bad_tus_header"),  # neither length nor deferral
        ({"Upload-Length": "5", "Upload-Defer-Length": "1"}, 400, "bad_tus_header"),
        ({"Upload-Defer-Length": "2"}, 400, "bad_tus_header"),
        ({"Upload-Length": "-1"}, 400, "bad_tus_header"),
        ({"Upload-Length": "5", "Upload-Metadata": "filename !!"}, 400, "bad_tus_header"),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ==,a YQ=="}, 400, "bad_tus_header"),
        ({"Upload-Length": str(1024**4 + 1)}, 413, "upload_too_large"),
        ({"Upload-Concat": "final;"}, 400, "bad_tus_header"),
    ],
)
async def test_bad_creation(
    client: Client, headers: dict[str, str], status: int, code: str
) -> None:
    resp = await client.post("/files/", headers={**TUS, **headers})
    assert resp.status == status
    assert await error_code(resp) == code
    assert resp.headers["Tus-Resumable"] == "1.0.0"


async def test_creation_with_upload(client: Client) -> None:
    resp = await client.post(
        "/files/",
        data=b"hello",
        headers={**PATCH, "Upload-Length": "11"},
    )
    assert resp.status == 201
    assert resp.headers["Upload-Offset"] == "5"
    upload_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert (await patch(client, upload_id, 5, b" world")).status == 204
    assert await (await client.get(f"/files/{upload_id}")).read() == b"hello world"


async def test_zero_length_upload_is_complete_at_once(client: Client) -> None:
    upload_id = await create(client, 0)
    got = await client.get(f"/files/{upload_id}")
    assert got.status == 200 and await got.read() == b""


async def test_deferred_length(client: Client) -> None:
    upload_id = await create(client, None, **{"Upload-Defer-Length": "1"})
    h = await head(client, upload_id)
    assert h.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in h.headers
    assert (await patch(client, upload_id, 0, b"abc")).status == 204
    r = await patch(client, upload_id, 3, b"def", **{"Upload-Length": "6"})
    assert r.status == 204 and r.headers["Upload-Offset"] == "6"
    assert await (await client.get(f"/files/{upload_id}")).read() == b"abcdef"
    assert (await head(client, upload_id)).headers["Upload-Length"] == "6"


# -- HEAD ----------------------------------------------------------------------------------


async def test_head(client: Client) -> None:
    meta = f"filename {b64('a b.txt')},flag"
    upload_id = await create(client, 10, **{"Upload-Metadata": meta})
    await patch(client, upload_id, 0, b"1234")
    h = await head(client, upload_id)
    assert h.status == 200
    assert h.headers["Upload-Offset"] == "4"
    assert h.headers["Upload-Length"] == "10"
    assert h.headers["Upload-Metadata"] == meta
    assert h.headers["Cache-Control"] == "no-store"
    assert h.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in h.headers


async def test_head_unknown_is_404(client: Client) -> None:
    h = await head(client, "A" * 22)
    assert h.status == 404 and h.headers["Tus-Resumable"] == "1.0.0"


# -- PATCH ---------------------------------------------------------------------------------


async def test_patch_rules(client: Client) -> None:
    upload_id = await create(client, 10)
    url = f"/files/{upload_id}"
    wrong_type = await client.patch(url, data=b"x", headers={**TUS, "Upload-Offset": "0"})
    assert wrong_type.status == 415
    no_offset = await client.patch(url, data=b"x", headers=PATCH)
    assert no_offset.status == 400
    assert (await patch(client, upload_id, 0, b"12345")).status == 204
    conflict = await patch(client, upload_id, 3, b"xx")
    assert conflict.status == 409
    assert conflict.headers["Upload-Offset"] == "5"
    assert await error_code(conflict) == "offset_mismatch"
    too_long = await patch(client, upload_id, 5, b"678901")
    assert too_long.status == 413 and await error_code(too_long) == "length_exceeded"
    assert (await head(client, upload_id)).headers["Upload-Offset"] == "5"  # none taken

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to refuse it by
        yield b"678"
        yield b"901"

    too_long = await patch(client, upload_id, 5, chunked())  # type: ignore[arg-type]
    assert too_long.status == 413 and await error_code(too_long) == "length_exceeded"
    assert await (await client.get(url)).read() == b"1234567890"  # what fit, finished
    no_version = await client.patch(url, data=b"", headers={"Content-Type": PATCH["Content-Type"]})
    assert no_version.status == 412


async def expecting_patch(client: Client, upload_id: str, offset: int, length: int):  # type: ignore[no-untyped-def]
    """A PATCH that announces `length` bytes and waits for 100 Continue before sending."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"PATCH /files/{upload_id} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize(
    ("offset", "length", "status"),
    [(5, 6, b"413 "), (3, 2, b"409 "), (10, 1, b"403 ")],  # past the length; wrong offset; done
)
async def test_a_refused_patch_gets_no_100_continue(
    client: Client, offset: int, length: int, status: bytes
) -> None:
    """As tusd: the refusal is the first answer, so the client never sends the body, and
    the connection closes, since the body it declared will not come."""
    upload_id = await create(client, 10)
    assert (await patch(client, upload_id, 0, b"12345")).status == 204
    if status == b"403 ":
        assert (await patch(client, upload_id, 5, b"67890")).status == 204
    reader, writer = await expecting_patch(client, upload_id, offset, length)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 " + status)
        assert b"Connection: close" in head
    finally:
        writer.close()
    done = b"1234567890" if status == b"403 " else b"12345"
    assert (await head_of(client, upload_id)) == str(len(done))


async def test_a_refused_patch_whose_body_came_anyway_still_gets_its_answer(
    client: Client,
) -> None:
    """A client that sends the body without waiting for the 100, and reads only once it
    has sent it all (a blocking client): the 409 waits for it, since aiohttp's lingering
    close reads and drops the bytes after it rather than resetting the connection."""
    size = 8 << 20
    upload_id = await create(client, size)
    head = (
        f"PATCH /files/{upload_id} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 7\r\n"
        f"Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()

    def send_then_read() -> bytes:
        with socket.create_connection((client.host, client.port), timeout=15) as sock:
            sock.sendall(head)
            time.sleep(0.3)  # the answer is sent, and the server closes after it...
            sock.sendall(bytes(size))  # ...while these bytes come
            got = b""
            while chunk := sock.recv(1 << 16):
                got += chunk
            return got

    answer = await asyncio.to_thread(send_then_read)
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 409 ") and b"Connection: close" in head_part
    assert b'"offset_mismatch"' in body
    assert (await head_of(client, upload_id)) == "0"


async def head_of(client: Client, upload_id: str) -> str:
    return (await head(client, upload_id)).headers["Upload-Offset"]


@pytest.mark.parametrize("size", [5, 2 << 20])  # through aiohttp; moved from the socket
async def test_an_accepted_patch_gets_its_100_continue_then_stores_the_body(
    client: Client, size: int
) -> None:
    body = os.urandom(size)
    upload_id = await create(client, size)
    reader, writer = await expecting_patch(client, upload_id, 0, size)
    try:
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        await writer.drain()
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    assert final.startswith(b"HTTP/1.1 204 ")
    assert f"Upload-Offset: {size}\r\n".encode() in final
    got = await (await client.get(f"/files/{upload_id}")).read()
    assert sha256(got) == sha256(body)


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "crc32"])
async def test_checksum(client: Client, algorithm: str) -> None:
    import zlib

    def digest(data: bytes) -> str:
        if algorithm == "crc32":
            return b64(zlib.crc32(data).to_bytes(4, "big"))
        return b64(hashlib.new(algorithm, data).digest())

    upload_id = await create(client, 8)
    good = await patch(
        client, upload_id, 0, b"abcd", **{"Upload-Checksum": f"{algorithm} {digest(b'abcd')}"}
    )
    assert good.status == 204 and good.headers["Upload-Offset"] == "4"
    bad = await patch(
        client, upload_id, 4, b"efgh", **{"Upload-Checksum": f"{algorithm} {digest(b'nope')}"}
    )
    assert bad.status == 460
    assert await error_code(bad) == "checksum_mismatch"
    assert (await head(client, upload_id)).headers["Upload-Offset"] == "4"  # chunk discarded
    again = await patch(
        client, upload_id, 4, b"efgh", **{"Upload-Checksum": f"{algorithm} {digest(b'efgh')}"}
    )
    assert again.status == 204
    assert await (await client.get(f"/files/{upload_id}")).read() == b"abcdefgh"


async def test_unsupported_checksum_algorithm_is_400(client: Client) -> None:
    upload_id = await create(client, 4)
    r = await patch(client, upload_id, 0, b"abcd", **{"Upload-Checksum": "whirlpool AAAA"})
    assert r.status == 400
    assert (await head(client, upload_id)).headers["Upload-Offset"] == "0"


async def test_request_cap_applies_per_patch_not_per_upload(make_client: ClientFactory) -> None:
    client = await make_client(max_request_size=1 << 20)
    body = os.urandom(3 << 20)
    upload_id = await create(client, len(body))
    too_big = await patch(client, upload_id, 0, body[: (1 << 20) + 1])
    assert too_big.status == 413
    for offset in range(0, len(body), 1 << 20):
        r = await patch(client, upload_id, offset, body[offset : offset + (1 << 20)])
        assert r.status == 204
    got = await client.get(f"/files/{upload_id}")
    assert got.status == 200 and hashlib.sha256(await got.read()).hexdigest() == sha256(body)


async def test_patch_to_a_finished_upload(client: Client) -> None:
    upload_id = await create(client, 2)
    await patch(client, upload_id, 0, b"ab")
    r = await patch(client, upload_id, 2, b"c")
    assert r.status == 403


# -- termination, expiration, method override ----------------------------------------------


async def test_termination(client: Client) -> None:
    upload_id = await create(client, 10)
    await patch(client, upload_id, 0, b"123")
    r = await client.delete(f"/files/{upload_id}", headers=TUS)
    assert r.status == 204 and r.headers["Tus-Resumable"] == "1.0.0"
    gone = await head(client, upload_id)
    assert gone.status == 410
    assert (await patch(client, upload_id, 3, b"4")).status == 410


async def test_expiration(client: Client) -> None:
    upload_id = await create(client, 10)
    await patch(client, upload_id, 0, b"123")
    finished = await create(client, 1)
    await patch(client, finished, 0, b"x")
    store = client.app[STORE]  # type: ignore[index]
    assert await sweep_once(store, now=time.time() + 3600) == []  # not yet
    assert await sweep_once(store, now=time.time() + 86400 + 5) == [upload_id]
    assert (await head(client, upload_id)).status == 410
    assert (await client.get(f"/files/{finished}")).status == 200  # finished ones stay


async def stored_but_never_finished(client: Client, body: bytes) -> str:
    """An upload whose bytes are all stored, as if spigot died before finishing it."""
    upload_id = await create(client, len(body))
    store = client.app[STORE]  # type: ignore[index]
    upload = await store.open(upload_id)

    async def chunks():  # type: ignore[no-untyped-def]
        yield body

    await upload.append(0, chunks())  # and no finish(): killed
    store.hashers.pop(upload_id)  # a new process: no hash state either
    return upload_id


async def test_head_finishes_an_upload_a_crash_left_unfinished(client: Client) -> None:
    body = os.urandom(6 << 20)
    upload_id = await stored_but_never_finished(client, body)
    assert (await client.get(f"/files/{upload_id}")).status == 409  # not yet complete
    r = await head(client, upload_id)  # what a resuming tus client asks first
    assert r.status == 200
    assert r.headers["Upload-Offset"] == r.headers["Upload-Length"] == str(len(body))
    got = await client.get(f"/files/{upload_id}")
    assert got.status == 200 and await got.read() == body
    assert got.headers["ETag"] == f'"{sha256(body)}"'


async def test_patch_of_nothing_at_the_end_finishes_it_too(client: Client) -> None:
    upload_id = await stored_but_never_finished(client, b"0123456789")
    r = await patch(client, upload_id, 10, b"")
    assert r.status == 204 and r.headers["Upload-Offset"] == "10"
    assert await (await client.get(f"/files/{upload_id}")).read() == b"0123456789"


async def test_the_sweep_finishes_and_announces_it(client: Client) -> None:
    upload_id = await stored_but_never_finished(client, b"abc")
    app = client.app
    assert app is not None
    done = await finish_stored(app[STORE], [upload_id], app[LIFECYCLE], "http://x")
    assert done == [upload_id]
    assert await (await client.get(f"/files/{upload_id}")).read() == b"abc"
    assert (await app[STORE].open(upload_id)).info.finish_announced


async def test_method_override(client: Client) -> None:
    upload_id = await create(client, 3)
    url = f"/files/{upload_id}"
    r = await client.post(
        url, data=b"abc", headers={**PATCH, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}
    )
    assert r.status == 204 and r.headers["Upload-Offset"] == "3"
    other = await create(client, 3)
    r = await client.post(f"/files/{other}", headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert r.status == 204
    assert (await head(client, other)).status == 410
    plain = await client.post(url)
    assert plain.status == 405


# -- concatenation -------------------------------------------------------------------------


async def test_concatenation(client: Client) -> None:
    parts = [os.urandom(1000), os.urandom(70_000), os.urandom(1)]
    urls = []
    for data in parts:
        pid = await create(client, len(data), **{"Upload-Concat": "partial"})
        assert (await patch(client, pid, 0, data)).status == 204
        assert (await head(client, pid)).headers["Upload-Concat"] == "partial"
        urls.append(f"http://127.0.0.1:{client.port}/files/{pid}")
    meta = f"filename {b64('whole.bin')}"
    resp = await client.post(
        "/files/",
        headers={**TUS, "Upload-Concat": "final;" + " ".join(urls), "Upload-Metadata": meta},
    )
    assert resp.status == 201
    final = resp.headers["Location"].rsplit("/", 1)[1]
    h = await head(client, final)
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(sum(map(len, parts)))
    assert h.headers["Upload-Concat"].startswith("final;/files/")
    got = await client.get(f"/files/{final}")
    assert await got.read() == b"".join(parts)
    assert got.headers["Content-Disposition"] == 'inline; filename="whole.bin"'
    assert (await patch(client, final, h.headers["Upload-Offset"], b"x")).status == 403  # type: ignore[arg-type]


async def test_concatenation_needs_finished_partials(client: Client) -> None:
    pid = await create(client, 10, **{"Upload-Concat": "partial"})
    await patch(client, pid, 0, b"123")
    resp = await client.post("/files/", headers={**TUS, "Upload-Concat": f"final;/files/{pid}"})
    assert resp.status == 400 and await error_code(resp) == "bad_partial"
    resp = await client.post(
        "/files/", headers={**TUS, "Upload-Concat": "final;/files/" + "Z" * 22}
    )
    assert resp.status == 400


# -- the lock ------------------------------------------------------------------------------


async def test_stuck_patch_gives_way(client: Client) -> None:
    """A PATCH whose client stopped sending (a dead connection) must not hold the upload:
    a new HEAD asks it to release, gets the offset of the bytes that arrived, and a new
    PATCH continues from there."""
    upload_id = await create(client, 100_000)
    writer = await start_raw_patch(client, upload_id, 100_000, b"s" * 30_000)
    await asyncio.sleep(0.3)  # the PATCH now waits for bytes that never come
    start = time.monotonic()
    h = await head(client, upload_id)
    assert h.status == 200
    assert time.monotonic() - start < 3
    assert h.headers["Upload-Offset"] == "30000"
    r = await patch(client, upload_id, 30_000, b"t" * 70_000)
    assert r.status == 204
    assert await (await client.get(f"/files/{upload_id}")).read() == b"s" * 30_000 + b"t" * 70_000
    writer.close()


async def test_disconnect_mid_patch_keeps_what_arrived(client: Client) -> None:
    upload_id = await create(client, 1_000_000)
    writer = await start_raw_patch(client, upload_id, 1_000_000, b"k" * 400_000)
    await asyncio.sleep(0.2)
    writer.transport.abort()  # the client vanishes mid-body (RST)
    for _ in range(50):
        h = await head(client, upload_id)
        if h.headers["Upload-Offset"] == "400000":
            break
        await asyncio.sleep(0.05)
    assert h.headers["Upload-Offset"] == "400000"
    assert (await patch(client, upload_id, 400_000, b"m" * 600_000)).status == 204
    data = await (await client.get(f"/files/{upload_id}")).read()
    assert data == b"k" * 400_000 + b"m" * 600_000


@pytest.mark.parametrize(
    ("headers", "prefix"),
    [
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "up.example"},
            "https://up.example/files/",
        ),
        ({"Forwarded": 'proto=https;host="fw.example:8443"'}, "https://fw.example:8443/files/"),
    ],
)
async def test_location_behind_a_proxy(
    client: Client, headers: dict[str, str], prefix: str
) -> None:
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "1", **headers})
    assert resp.status == 201
    assert resp.headers["Location"].startswith(prefix)


async def test_location_with_public_url(make_client: ClientFactory) -> None:
    client = await make_client(public_url="https://files.example/up")
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": "1"})
    assert resp.headers["Location"].startswith("https://files.example/up/files/")


async def test_the_sweep_runs_on_its_own(make_client: ClientFactory) -> None:
    client = await make_client(upload_ttl=0.3, sweep_interval=0.1)
    upload_id = await create(client, 10)
    done = await create(client, 1)
    await patch(client, done, 0, b"x")
    for _ in range(40):
        if (await head(client, upload_id)).status == 410:
            break
        await asyncio.sleep(0.1)
    assert (await head(client, upload_id)).status == 410
    assert (await client.get(f"/files/{done}")).status == 200


async def test_listing_shows_finals_not_partials(client: Client) -> None:
    pid = await create(client, 3, **{"Upload-Concat": "partial"})
    await patch(client, pid, 0, b"abc")
    resp = await client.post("/files/", headers={**TUS, "Upload-Concat": f"final;/files/{pid}"})
    final = resp.headers["Location"].rsplit("/", 1)[1]
    listed = [f["id"] for f in await (await client.get("/files/")).json()]
    assert listed == [final]


async def test_offset_conflict_with_a_checksum_keeps_the_bytes(client: Client) -> None:
    upload_id = await create(client, 20)
    await patch(client, upload_id, 0, b"0123456789")
    digest = b64(hashlib.sha1(b"abc").digest())
    r = await patch(client, upload_id, 3, b"abc", **{"Upload-Checksum": f"sha1 {digest}"})
    assert r.status == 409 and r.headers["Upload-Offset"] == "10"
    assert (await head(client, upload_id)).headers["Upload-Offset"] == "10"


async def test_a_release_request_never_interrupts_finishing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a PATCH waiting on its client gives way; one busy finishing does not."""
    from storage.local import LocalUpload

    real_finish = LocalUpload.finish

    async def slow_finish(self: LocalUpload) -> object:
        await asyncio.sleep(0.5)  # as hashing a large file would take
        return await real_finish(self)

    monkeypatch.setattr(LocalUpload, "finish", slow_finish)
    upload_id = await create(client, 4)
    patching = asyncio.create_task(patch(client, upload_id, 0, b"done"))
    await asyncio.sleep(0.2)  # the PATCH is now finishing the upload
    h = await head(client, upload_id)  # asks the holder to release
    assert (await patching).status == 204
    assert h.headers["Upload-Offset"] == "4"
    got = await client.get(f"/files/{upload_id}")
    assert got.status == 200 and await got.read() == b"done"
