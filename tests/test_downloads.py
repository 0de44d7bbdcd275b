"""GET/HEAD /files/{id} over HTTP: one table row per Range and conditional-request rule."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient

from server.protocol.conditional import http_date
from tests.conftest import Backend, parse_multipart, sha256

Client = TestClient  # type: ignore[type-arg]

BODY = bytes(range(256)) * 4 + os.urandom(976)  # 2000 bytes
SIZE = len(BODY)
OLD = "Thu, 01 Jan 2015 00:00:00 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


@dataclass
class Row:
    id: str
    headers: dict[str, str]
    status: int
    expect: dict[str, str] = field(default_factory=dict)  # exact header values; {etag} {lm}
    body: object = "full"  # "full", "", (a, b) for BODY[a:b], [(a, b), ...] multipart, "json"
    method: str = "GET"


ROWS = [
    Row("plain", {}, 200, {"Content-Length": str(SIZE), "Accept-Ranges": "bytes"}),
    Row("head", {}, 200, {"Content-Length": str(SIZE), "ETag": "{etag}"}, "", "HEAD"),
    Row(
        "first-bytes",
        {"Range": "bytes=0-99"},
        206,
        {"Content-Range": f"bytes 0-99/{SIZE}", "Content-Length": "100"},
        (0, 100),
    ),
    Row(
        "open-ended",
        {"Range": "bytes=1500-"},
        206,
        {"Content-Range": f"bytes 1500-1999/{SIZE}"},
        (1500, 2000),
    ),
    Row(
        "suffix",
        {"Range": "bytes=-300"},
        206,
        {"Content-Range": f"bytes 1700-1999/{SIZE}"},
        (1700, 2000),
    ),
    Row(
        "clamped",
        {"Range": "bytes=1990-9999"},
        206,
        {"Content-Range": f"bytes 1990-1999/{SIZE}"},
        (1990, 2000),
    ),
    Row(
        "head-range",
        {"Range": "bytes=0-9"},
        206,
        {"Content-Range": f"bytes 0-9/{SIZE}", "Content-Length": "10"},
        "",
        "HEAD",
    ),
    Row("multi", {"Range": "bytes=0-9,100-109,-5"}, 206, {}, [(0, 10), (100, 110), (1995, 2000)]),
    Row(
        "multi-coalesced-to-one",
        {"Range": "bytes=0-9,10-19,5-12"},
        206,
        {"Content-Range": f"bytes 0-19/{SIZE}"},
        (0, 20),
    ),
    Row("multi-overlap-merged", {"Range": "bytes=50-59,0-9,55-70"}, 206, {}, [(0, 10), (50, 71)]),
    Row(
        "too-many-ranges",
        {"Range": "bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(17))},
        200,
    ),
    Row("ranges-exceed-size", {"Range": "bytes=0-1999,0-1999"}, 200),
    Row(
        "unsatisfiable",
        {"Range": "bytes=2000-"},
        416,
        {"Content-Range": f"bytes */{SIZE}", "Content-Type": "application/json; charset=utf-8"},
        "json",
    ),
    Row("invalid-range-ignored", {"Range": "bytes=oops"}, 200),
    Row("other-unit-ignored", {"Range": "lines=1-2"}, 200),
    Row("if-range-etag", {"Range": "bytes=0-9", "If-Range": "{etag}"}, 206, {}, (0, 10)),
    Row("if-range-stale-etag", {"Range": "bytes=0-9", "If-Range": '"stale"'}, 200),
    Row("if-range-weak-etag", {"Range": "bytes=0-9", "If-Range": "W/{etag}"}, 200),
    Row("if-range-date", {"Range": "bytes=0-9", "If-Range": "{lm}"}, 206, {}, (0, 10)),
    Row("if-range-other-date", {"Range": "bytes=0-9", "If-Range": FUTURE}, 200),
    Row("if-none-match", {"If-None-Match": "{etag}"}, 304, {"ETag": "{etag}"}, ""),
    Row("if-none-match-weak", {"If-None-Match": "W/{etag}"}, 304, {}, ""),
    Row("if-none-match-star", {"If-None-Match": "*"}, 304, {}, ""),
    Row("if-none-match-other", {"If-None-Match": '"other"'}, 200),
    Row(
        "if-modified-since-later", {"If-Modified-Since": FUTURE}, 304, {"Last-Modified": "{lm}"}, ""
    ),
    Row("if-modified-since-same", {"If-Modified-Since": "{lm}"}, 304, {}, ""),
    Row("if-modified-since-older", {"If-Modified-Since": OLD}, 200),
    Row("inm-wins-over-ims", {"If-None-Match": '"other"', "If-Modified-Since": FUTURE}, 200),
    Row("if-match", {"If-Match": "{etag}"}, 200),
    Row("if-match-fails", {"If-Match": '"other"'}, 412, {}, "json"),
    Row("if-match-weak-fails", {"If-Match": "W/{etag}"}, 412, {}, "json"),
    Row("if-unmodified-since-ok", {"If-Unmodified-Since": FUTURE}, 200),
    Row("if-unmodified-since-fails", {"If-Unmodified-Since": OLD}, 412, {}, "json"),
    Row("if-match-then-range", {"If-Match": "{etag}", "Range": "bytes=5-9"}, 206, {}, (5, 10)),
    Row("412-before-range", {"If-Match": '"x"', "Range": "bytes=0-9"}, 412, {}, "json"),
]


@pytest.fixture
async def stored(client: Client) -> dict[str, str]:
    resp = await client.post("/files/?name=data.bin", data=BODY)
    assert resp.status == 201
    doc = await resp.json()
    head = await client.head(f"/files/{doc['id']}")
    return {"id": doc["id"], "etag": head.headers["ETag"], "lm": head.headers["Last-Modified"]}


def fill(value: str, stored: dict[str, str]) -> str:
    return value.replace("{etag}", stored["etag"]).replace("{lm}", stored["lm"])


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_download_table(client: Client, stored: dict[str, str], row: Row) -> None:
    headers = {k: fill(v, stored) for k, v in row.headers.items()}
    resp = await client.request(row.method, f"/files/{stored['id']}", headers=headers)
    data = await resp.read()
    assert resp.status == row.status, data[:200]
    for name, value in row.expect.items():
        assert resp.headers.get(name) == fill(value, stored), name
    if row.status in (200, 206, 304, 412, 416):
        assert resp.headers["ETag"] == stored["etag"]
    if row.body == "full":
        assert data == BODY
        assert resp.headers["Content-Length"] == str(SIZE)
        assert "Content-Range" not in resp.headers
    elif row.body == "":
        assert data == b""
    elif row.body == "json":
        assert resp.content_type == "application/json"
        assert set((await resp.json())["error"]) == {"code", "message"}
    elif isinstance(row.body, tuple):
        a, b = row.body
        assert data == BODY[a:b]
        assert resp.headers["Content-Type"] == "application/octet-stream"
    else:
        assert isinstance(row.body, list)
        ctype = resp.headers["Content-Type"]
        assert re.fullmatch(r"multipart/byteranges; boundary=[0-9a-f]{32}", ctype)
        assert resp.headers["Content-Length"] == str(len(data))
        parts = parse_multipart(ctype, data)
        assert len(parts) == len(row.body)
        for part, (a, b) in zip(parts, row.body, strict=True):
            assert part["Content-Type"] == "application/octet-stream"
            assert part["Content-Range"] == f"bytes {a}-{b - 1}/{SIZE}"
            assert part.get_payload(decode=True) == BODY[a:b]


async def test_validators(client: Client, stored: dict[str, str]) -> None:
    assert stored["etag"] == f'"{sha256(BODY)}"'
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", stored["lm"])


async def test_multi_range_head_has_exact_length(client: Client, stored: dict[str, str]) -> None:
    url = f"/files/{stored['id']}"
    get = await client.get(url, headers={"Range": "bytes=0-0,5-5"})
    head = await client.head(url, headers={"Range": "bytes=0-0,5-5"})
    assert head.status == 206
    assert head.headers["Content-Length"] == str(len(await get.read()))


async def test_the_files_digest_is_on_every_answer_with_its_bytes(
    client: Client, stored: dict[str, str]
) -> None:
    """RFC 9530's Repr-Digest on 200, 206 and HEAD (the whole file's, a range's too), and
    RFC 3230's Digest for a client that asks by Want-Digest, as aria2 does."""
    whole = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    url = f"/files/{stored['id']}"
    aria2 = {"Want-Digest": "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1"}
    for method, headers, status in [
        ("GET", {}, 200),
        ("HEAD", {}, 200),
        ("GET", {"Range": "bytes=10-19"}, 206),
        ("GET", {"Range": "bytes=0-0,5-5"}, 206),
        ("GET", aria2, 200),
        ("GET", {**aria2, "Range": "bytes=100-"}, 206),
    ]:
        resp = await client.request(method, url, headers=headers)
        assert resp.status == status
        assert resp.headers["Repr-Digest"] == f"sha-256=:{whole}:"
        if "Want-Digest" in headers:
            assert resp.headers["Digest"] == f"SHA-256={whole}"
        else:
            assert "Digest" not in resp.headers
    refused = await client.get(url, headers={"Want-Digest": "SHA-256;q=0, MD5"})
    assert "Digest" not in refused.headers
    unchanged = await client.get(url, headers={"If-None-Match": stored["etag"]})
    assert unchanged.status == 304 and "Repr-Digest" not in unchanged.headers


@pytest.mark.parametrize(
    ("name", "query", "ctype", "disposition"),
    [
        ("notes.txt", "", "text/plain", 'inline; filename="notes.txt"'),
        ("notes.txt", "?download=1", "text/plain", 'attachment; filename="notes.txt"'),
        ("clip.mp4", "", "video/mp4", 'inline; filename="clip.mp4"'),
        ("noext", "", "application/octet-stream", 'inline; filename="noext"'),
        (
            "résumé final.pdf",
            "?download=1",
            "application/pdf",
            'attachment; filename="r_sum_ final.pdf"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf",
        ),
    ],
)
async def test_type_and_disposition(
    client: Client, name: str, query: str, ctype: str, disposition: str
) -> None:
    resp = await client.put(f"/files/{name}", data=b"x")
    file_id = (await resp.json())["id"]
    got = await client.get(f"/files/{file_id}{query}")
    assert got.status == 200
    assert got.headers["Content-Type"].split(";")[0] == ctype
    assert got.headers["Content-Disposition"] == disposition
    assert got.headers["X-Content-Type-Options"] == "nosniff"


async def test_empty_file(client: Client) -> None:
    resp = await client.post("/files/?name=e", data=b"")
    assert resp.status == 201 and (await resp.json())["size"] == 0
    file_id = (await resp.json())["id"]
    got = await client.get(f"/files/{file_id}", headers={"Range": "bytes=0-"})
    assert got.status == 200 and got.headers["Content-Length"] == "0"
    assert await got.read() == b""


async def test_unknown_and_malformed_ids(client: Client) -> None:
    for path in ["/files/AAAAAAAAAAAAAAAAAAAAAA", "/files/..%2f..%2fetc%2fpasswd", "/files/x.info"]:
        resp = await client.get(path)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_incomplete_upload_is_not_served(client: Client) -> None:
    from server.context import STORE
    from storage import UploadSpec

    store = client.app[STORE]  # type: ignore[index]
    upload = await store.create(UploadSpec(name="partial", length=10))
    resp = await client.get(f"/files/{upload.info.id}")
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "upload_incomplete"


async def test_listing_json_and_ndjson(client: Client) -> None:
    ids = []
    for i in range(3):
        resp = await client.post(f"/files/?name=f{i}.txt", data=b"x" * i)
        ids.append((await resp.json())["id"])
    resp = await client.get("/files/")
    assert resp.status == 200 and resp.content_type == "application/json"
    listed = await resp.json()
    assert sorted(f["id"] for f in listed) == sorted(ids)
    assert {f["name"]: f["size"] for f in listed} == {"f0.txt": 0, "f1.txt": 1, "f2.txt": 2}
    assert all(f["url"].endswith("/files/" + f["id"]) for f in listed)

    resp = await client.get("/files/", headers={"Accept": "application/x-ndjson"})
    assert resp.content_type == "application/x-ndjson"
    assert "Content-Length" not in resp.headers  # streamed, not built up front
    lines = (await resp.read()).decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(ids)


async def test_listing_in_pages(client: Client) -> None:
    """`?limit=` pages follow `Link: rel="next"` in id order, each file once, even when
    files come and go between pages; the last page has no Link."""
    ids = []
    for i in range(7):
        resp = await client.post(f"/files/?name=p{i}", data=b"p" * i)
        ids.append((await resp.json())["id"])
    pending = await client.post("/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "9"})
    assert pending.status == 201  # unfinished: never listed, and never counted in a page
    ids.sort()
    first = await client.get("/files/?limit=3")
    assert first.status == 200 and first.content_type == "application/json"
    assert [f["id"] for f in await first.json()] == ids[:3]
    base = str(client.make_url("/files/"))
    assert first.headers["Link"] == f'<{base}?limit=3&after={ids[2]}>; rel="next"'
    assert (await client.delete(f"/files/{ids[3]}")).status == 204  # gone between pages
    second = await client.get(f"/files/?limit=3&after={ids[2]}")
    assert [f["id"] for f in await second.json()] == ids[4:7]
    assert "Link" not in second.headers  # nothing after the last: no next page
    lines = await client.get(
        f"/files/?after={ids[4]}", headers={"Accept": "application/x-ndjson"}
    )  # after alone: the default limit
    got = [json.loads(line)["id"] for line in (await lines.read()).decode().splitlines()]
    assert got == ids[5:] and "Link" not in lines.headers


async def test_listing_newest_first_in_pages(client: Client) -> None:
    """`?order=newest` pages by created time, newest first, each file once even when files
    come and go between pages, with how many there are in all in `X-Total-Count`."""
    ids = []
    for i in range(7):
        resp = await client.post(f"/files/?name=n{i}", data=b"n" * i)
        ids.append((await resp.json())["id"])
    pending = await client.post("/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "9"})
    assert pending.status == 201  # unfinished: neither listed nor counted
    newest = ids[::-1]
    first = await client.get("/files/?order=newest&limit=3")
    assert first.status == 200 and first.headers["X-Total-Count"] == "7"
    got = await first.json()
    assert [f["id"] for f in got] == newest[:3]
    assert [f["name"] for f in got] == ["n6", "n5", "n4"]
    base = str(client.make_url("/files/"))
    cursor = f"{got[-1]['created']!r}~{got[-1]['id']}"
    assert first.headers["Link"] == f'<{base}?order=newest&limit=3&before={cursor}>; rel="next"'
    assert (await client.delete(f"/files/{newest[3]}")).status == 204  # gone between pages
    late = await client.post("/files/?name=late", data=b"late")  # newer than the cursor
    assert late.status == 201
    second = await client.get(f"/files/?order=newest&limit=3&before={cursor}")
    assert [f["id"] for f in await second.json()] == newest[4:7]
    assert second.headers["X-Total-Count"] == "7"  # one went, one came
    assert "Link" not in second.headers  # exactly the rest: no next page
    lines = await client.get("/files/?order=newest", headers={"Accept": "application/x-ndjson"})
    listed = [json.loads(line) for line in (await lines.read()).decode().splitlines()]
    assert [f["name"] for f in listed] == ["late", "n6", "n5", "n4", "n2", "n1", "n0"]
    assert "Link" not in lines.headers


@pytest.mark.parametrize(
    "query",
    [
        "order=oldest",
        "order=newest&after=" + "A" * 22,
        "before=1.5~" + "A" * 22,
        "order=newest&before=nan~" + "A" * 22,
        "order=newest&before=" + "A" * 22,
        "order=newest&limit=1001",
    ],
)
async def test_a_bad_newest_page_is_a_400(client: Client, query: str) -> None:
    resp = await client.get(f"/files/?{query}")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_query"


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=x", "limit=", "limit=²", "after=../../etc", "after=abc"],
)
async def test_a_bad_page_is_a_400(client: Client, query: str) -> None:
    resp = await client.get(f"/files/?{query}")
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_query"


async def test_empty_listing(client: Client) -> None:
    resp = await client.get("/files/")
    assert await resp.json() == []


async def test_delete(client: Client) -> None:
    resp = await client.post("/files/", data=b"bye")
    file_id = (await resp.json())["id"]
    resp = await client.delete(f"/files/{file_id}")
    assert resp.status == 204
    assert (await client.get(f"/files/{file_id}")).status == 404
    resp = await client.delete(f"/files/{file_id}")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_last_modified_is_http_date(stored: dict[str, str]) -> None:
    from server.protocol.conditional import parse_http_date

    moment = parse_http_date(stored["lm"])
    assert moment is not None and http_date(moment) == stored["lm"]


async def test_deleted_behind_our_back_is_404(client: Client, backend_store: Backend) -> None:
    resp = await client.post("/files/?name=big.bin", data=os.urandom(600_000))
    file_id = (await resp.json())["id"]
    assert (await client.get(f"/files/{file_id}", headers={"Range": "bytes=0-9"})).status == 206
    backend_store.remove(file_id, "", ".info")
    for headers in ({"Range": "bytes=0-9"}, {}):  # the small path and the sendfile path
        got = await client.get(f"/files/{file_id}", headers=headers)
        assert got.status == 404
        assert (await got.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("name", "declared", "csp"),
    [
        ("page.html", None, "sandbox"),
        ("x.bin", "text/html", "sandbox"),
        ("logo.svg", None, "sandbox"),
        ("photo.png", None, None),
        ("clip.mp4", None, None),
        ("doc.pdf", None, None),
    ],
)
async def test_active_content_is_sandboxed(
    client: Client, name: str, declared: str | None, csp: str | None
) -> None:
    headers = {"Content-Type": declared} if declared else {}
    resp = await client.post(
        f"/files/?name={name}", data=b"<script>alert(1)</script>", headers=headers
    )
    file_id = (await resp.json())["id"]
    got = await client.get(f"/files/{file_id}")
    assert got.headers.get("Content-Security-Policy") == csp
    assert got.headers["X-Content-Type-Options"] == "nosniff"


async def test_tus_filetype_is_validated_and_sandboxed(client: Client) -> None:
    import base64

    def meta(**kv: str) -> str:
        return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())

    for filetype, served, csp in [
        ("text/html", "text/html", "sandbox"),
        ("garbage", "text/plain", None),  # an invalid type is ignored: the name decides
    ]:
        resp = await client.post(
            "/files/",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "1",
                "Upload-Metadata": meta(filename="n.txt", filetype=filetype),
            },
        )
        upload_id = resp.headers["Location"].rsplit("/", 1)[1]
        await client.patch(
            f"/files/{upload_id}",
            data=b"x",
            headers={
                "Tus-Resumable": "1.0.0",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
            },
        )
        got = await client.get(f"/files/{upload_id}")
        assert got.headers["Content-Type"].split(";")[0] == served
        assert got.headers.get("Content-Security-Policy") == csp
