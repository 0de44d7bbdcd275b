"""deploy/nginx/spigot.conf, exactly as shipped, in Debian's nginx in front of a real spigot.

Only what must differ on this machine is rewritten: the listen ports, spigot's port, the
certificate's paths and the data directory the X-Accel-Redirect location maps. Through it,
uploads and event streams stream, Location says https and the public host, ranges and
aria2c work (served by nginx itself from the file), tus-js-client uploads, and spigot's 413
reaches the client as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import (
    ROOT,
    SpigotProcess,
    assert_byteranges,
    sha256,
    start_spigot,
    stop_spigot,
    write_random,
)
from tests.rufh_client import exchange
from tests.test_presign_browser import free_port
from tests.test_tus_js import node_test
from tests.tools import require, require_file

CONF = ROOT / "deploy" / "nginx" / "spigot.conf"
KEPT = ROOT / "deploy" / "nginx" / "spigot-kept-answers.conf"
HEADERS_MORE = "libnginx-mod-http-headers-more-filter"
MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
SECRET = "a test secret for the signed links of these tests"


@dataclass
class Front:
    http: str  # nginx, plain
    https_port: int
    spigot: SpigotProcess
    data: Path
    cert: Path


def self_signed(
    directory: Path, host: str = "public.example", ip: str | None = None
) -> tuple[Path, Path]:
    """A certificate for `host` (and `ip`, if given) and its key, under `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    alt: list[x509.GeneralName] = [x509.DNSName(host)]
    if ip is not None:
        alt.append(x509.IPAddress(ipaddress.ip_address(ip)))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), False)
        .sign(key, hashes.SHA256())
    )
    chain, private = directory / "fullchain.pem", directory / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, private


def templated(upstream: int, http: int, https: int, cert: Path, key: Path, data: Path) -> str:
    """The shipped file with this machine's ports and paths, and nothing else changed, with
    spigot-kept-answers.conf in place of the commented `include` of it."""
    kept = KEPT.read_text()
    assert kept.count("root /var/lib/spigot;") == 1
    kept = kept.replace("root /var/lib/spigot;", f"root {data};")
    text = CONF.read_text()
    swaps = {
        "# include /etc/nginx/spigot-kept-answers.conf;": kept,
        "/dev/shm/spigot-answers": str(data.parent / "answers"),
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "/etc/ssl/spigot/fullchain.pem": str(cert),
        "/etc/ssl/spigot/privkey.pem": str(key),
        "alias /var/lib/spigot/;": f"alias {data}/;",
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"{old!r} is no longer in {CONF}"
        text = text.replace(old, new)
    return text


def main_conf(root: Path, site: str, workers: int = 1) -> Path:
    """An nginx.conf under `root` for a foreground nginx that includes `site` (bench/deploy.py
    uses it too)."""
    for sub in ("tmp", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "site.conf").write_text(site)
    main = root / "nginx.conf"
    main.write_text(
        textwrap.dedent(f"""\
        load_module {require_file(HEADERS_MORE)};
        user root;
        worker_processes {workers};
        daemon off;
        pid {root}/nginx.pid;
        error_log {root}/logs/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {root}/tmp;
            proxy_temp_path {root}/tmp;
            include {root}/site.conf;
        }}
        """)
    )
    return main


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    root = tmp_path_factory.mktemp("nginx")
    data = root / "data"
    spigot = start_spigot(  # --no-104 as deploy/ runs it: nginx cannot pass a 104
        data,
        *("--max-request-size", "1100MiB", "--accel-redirect", "/_spigot_files/", "--no-104"),
        *("--accel-reuse", "60s"),
        env={"SPIGOT_SECRET": SECRET},
    )
    upstream = int(spigot.url.rsplit(":", 1)[1])
    http, https = free_port(), free_port()
    cert, key = self_signed(root)
    main = main_conf(root, templated(upstream, http, https, cert, key, data))
    nginx = require("nginx")
    check = subprocess.run([nginx, "-t", "-c", str(main), "-p", str(root)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    proc = subprocess.Popen([nginx, "-c", str(main), "-p", str(root)])
    try:
        _wait(http)
        yield Front(f"http://127.0.0.1:{http}", https, spigot, data, cert)
    finally:
        proc.terminate()
        proc.wait(10)
        stop_spigot(spigot)


def _wait(port: int) -> None:
    import socket
    import time

    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        yield session


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("curl"), "-sS", *args], capture_output=True, text=True, timeout=120
    )


def test_location_says_https_and_the_public_host(front: Front) -> None:
    """TLS ends at nginx; tus's Location and the upload's JSON still name what the client
    used (tusd#277, #1227)."""
    port = front.https_port
    at = f"https://public.example:{port}"
    resolve = ("--resolve", f"public.example:{port}:127.0.0.1", "--cacert", str(front.cert))
    tus = curl(*resolve, "-D", "-", "-o", "/dev/null", "-X", "POST", f"{at}/files/",
               "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Length: 5")  # fmt: skip
    assert tus.returncode == 0, tus.stderr
    location = next(
        line.split(": ", 1)[1].strip()
        for line in tus.stdout.splitlines()
        if line.lower().startswith("location:")
    )
    assert location.startswith(f"{at}/files/")
    one_shot = curl(*resolve, "--data-binary", "hello", f"{at}/files/?name=hello.txt")
    assert json.loads(one_shot.stdout)["url"].startswith(f"{at}/files/")


async def test_a_big_upload_streams_and_its_events_arrive_live(
    front: Front, http: aiohttp.ClientSession
) -> None:
    """1 GiB through nginx in one PATCH: spigot's progress events reach a second client
    while the body is still being sent, so neither the request nor the stream is held
    back. The body waits halfway until an event says spigot has the first half."""
    size, block = 1 << 30, os.urandom(MIB)
    made = await http.post(f"{front.http}/files/", headers={**TUS, "Upload-Length": str(size)})
    assert made.status == 201
    url = made.headers["Location"]
    assert url.startswith(front.http)
    halfway = asyncio.Event()
    seen: list[int] = []

    async def watch() -> None:
        async with http.get(f"{url}/events") as resp:
            assert resp.status == 200
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if "offset" in data:
                        seen.append(data["offset"])
                        if data["offset"] >= size // 2:
                            halfway.set()
                    if data.get("sha256"):
                        return

    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(size // MIB):
            if i == size // MIB // 2:
                await asyncio.wait_for(halfway.wait(), 60)  # live, or this times out
            digest.update(block)
            yield block

    watcher = asyncio.create_task(watch())
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    patched = await http.patch(url, data=body(), headers=headers)
    assert patched.status == 204, await patched.text()
    await asyncio.wait_for(watcher, 60)
    assert any(size // 2 <= o < size for o in seen), seen[:5]
    head = await http.head(url, headers=TUS)
    assert head.headers["Upload-Offset"] == str(size)
    got = await http.head(url)
    assert got.headers["ETag"] == f'"{digest.hexdigest()}"'


async def test_ranges_and_if_range_are_served_by_nginx(
    front: Front, http: aiohttp.ClientSession
) -> None:
    """--accel-redirect: spigot answers with X-Accel-Redirect, nginx sends the file and
    serves every range, judging If-Range by spigot's ETag (the sha256)."""
    data = os.urandom(3 * MIB + 11)
    put = await http.put(f"{front.http}/files/ranges.bin", data=data)
    assert put.status == 201
    url = (await put.json())["url"]
    whole = await http.get(url)
    assert whole.status == 200 and await whole.read() == data
    etag = whole.headers["ETag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
    assert "X-Accel-Redirect" not in whole.headers
    assert len(whole.headers.getall("Last-Modified")) == 1
    assert len(whole.headers.getall("ETag")) == 1
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert whole.headers["Content-Disposition"].startswith("inline")
    one = await http.get(url, headers={"Range": "bytes=100-4195"})
    assert one.status == 206 and await one.read() == data[100:4196]
    assert one.headers["Content-Range"] == f"bytes 100-4195/{len(data)}"
    many = await http.get(url, headers={"Range": "bytes=0-9,2000000-2000099,-5"})
    assert many.status == 206
    assert_byteranges(
        many.headers["Content-Type"],
        await many.read(),
        data,
        [(0, 10), (2000000, 2000100), (len(data) - 5, len(data))],
    )
    kept = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert kept.status == 206 and await kept.read() == data[10:20]
    changed = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": '"other"'})
    assert changed.status == 200 and await changed.read() == data
    # spigot still does the checks first: a matching If-None-Match is its 304
    same = await http.get(url, headers={"If-None-Match": etag})
    assert same.status == 304
    # and the internal location is not reachable from outside
    hidden = await http.get(f"{front.http}/_spigot_files/{url.rsplit('/', 1)[1]}")
    assert hidden.status == 404


async def test_an_unsatisfiable_range_behind_nginx_is_json(
    front: Front, http: aiohttp.ClientSession
) -> None:
    """nginx decides a range past the end (spigot has handed the file over by then): its
    416 is spigot's JSON, with one Content-Type and the size in Content-Range."""
    data = os.urandom(5000)
    put = await http.put(f"{front.http}/files/short.bin", data=data)
    url = (await put.json())["url"]
    past = await http.get(url, headers={"Range": "bytes=5000-"})
    assert past.status == 416
    assert past.headers.getall("Content-Type") == ["application/json"]
    assert past.headers["Content-Range"] == "bytes */5000"
    body = await past.json()
    assert body["error"]["code"] == "range_not_satisfiable"
    assert body["error"]["message"]


def test_aria2c_through_nginx_is_byte_identical(front: Front, tmp_path: Path) -> None:
    source = tmp_path / "aria.bin"
    digest = write_random(source, 40 * MIB)
    put = curl("-T", str(source), f"{front.http}/files/aria.bin")
    url = json.loads(put.stdout)["url"]
    out = tmp_path / "out"
    done = subprocess.run(
        [require("aria2c"), "-x4", "-s4", "-k1M", "-q", "-d", str(out), "-o", "got.bin", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert hashlib.sha256((out / "got.bin").read_bytes()).hexdigest() == digest


def test_spigot_413_reaches_the_client_as_json(front: Front, tmp_path: Path) -> None:
    """client_max_body_size 0: the cap is spigot's (here 1100 MiB), and so is the answer,
    given before the body is sent."""
    sparse = tmp_path / "too-big.bin"
    with sparse.open("wb") as f:
        f.truncate(1200 * MIB)
    done = curl("-T", str(sparse), "-w", "\n%{http_code} %{content_type}", f"{front.http}/files/")
    body, _, status = done.stdout.rpartition("\n")
    assert status == "413 application/json; charset=utf-8", done.stdout[-500:] + done.stderr
    assert json.loads(body)["error"]["code"] == "too_large"


def test_tus_js_client_through_nginx(front: Front) -> None:
    through = replace(front.spigot, url=front.http)
    node_test(through, "tus.test.mjs", 6)


def test_ietf_draft_upload_resumes_through_nginx(front: Front) -> None:
    """With --no-104 the URL comes in the final response of a careful creation (`?0`,
    no body); a PATCH cut mid-body keeps what reached spigot, and the rest completes it."""
    draft = {"Upload-Draft-Interop-Version": "9"}
    data = os.urandom(6 * MIB + 7)
    created = exchange(front.http, "POST", "/files/", {**draft, "Upload-Complete": "?0"})
    assert created.statuses == [201]
    assert created.final is not None
    path = created.final["Location"].removeprefix(front.http)
    patch = {**draft, "Content-Type": "application/partial-upload", "Upload-Complete": "?1"}
    pieces = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    cut = exchange(front.http, "PATCH", path, {**patch, "Upload-Offset": "0"}, pieces,
                   length=len(data), cut_after=3 * MIB, pause=0.3)  # fmt: skip
    assert cut.final is None and cut.interim == []  # nginx passed no 104
    for _ in range(50):
        state = exchange(front.http, "HEAD", path, draft).final
        assert state is not None
        if state.status == 204 and state["Upload-Offset"] != "0":
            break
        time.sleep(0.1)
    offset = int(state["Upload-Offset"])
    assert 0 < offset <= 3 * MIB
    done = exchange(front.http, "PATCH", path, {**patch, "Upload-Offset": str(offset)},
                    data[offset:]).final  # fmt: skip
    assert done is not None and done.status == 201
    assert done["Upload-Complete"] == "?1"
    got = exchange(front.http, "GET", path).final
    assert got is not None and got.status == 200
    assert sha256(got.body) == sha256(data)


async def signed_link(http: aiohttp.ClientSession, front: Front, data: bytes, ttl: str) -> str:
    put = await http.put(f"{front.http}/files/clip.mp4", data=data)
    assert put.status == 201
    made = await http.post(
        f"{front.http}/sign", json={"file": (await put.json())["id"], "expires_in": ttl}
    )
    assert made.status == 200, await made.text()
    url: str = (await made.json())["url"]
    assert url.startswith(front.http)
    return url


@contextlib.contextmanager
def spigot_stopped(front: Front) -> Iterator[None]:
    """spigot frozen (SIGSTOP): whatever nginx answers meanwhile, it answers alone."""
    front.spigot.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        front.spigot.proc.send_signal(signal.SIGCONT)


async def test_a_signed_links_ranges_are_answered_by_nginx_alone(
    front: Front, http: aiohttp.ClientSession
) -> None:
    """--accel-reuse: nginx keeps spigot's answer to a signed download link and serves the
    link's GETs, HEADs and ranges from it with spigot's own headers, without asking spigot
    again; anything carrying a credential of its own still goes to spigot."""
    data = os.urandom(2 * MIB + 3)
    url = await signed_link(http, front, data, "1h")
    first = await http.get(url)
    assert first.status == 200 and await first.read() == data
    quick = aiohttp.ClientTimeout(total=3)
    with spigot_stopped(front):
        again = await http.get(url, timeout=quick)
        assert again.status == 200 and sha256(await again.read()) == sha256(data)
        for header in ("ETag", "Last-Modified", "Content-Disposition", "Cache-Control"):
            assert again.headers.getall(header) == first.headers.getall(header), header
        assert again.headers.getall("Content-Type") == ["video/mp4"]
        assert again.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert again.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Accel-Redirect" not in again.headers
        assert "X-Accel-Expires" not in again.headers
        part = await http.get(url, headers={"Range": "bytes=1000-5095"}, timeout=quick)
        assert part.status == 206 and await part.read() == data[1000:5096]
        assert part.headers["Content-Range"] == f"bytes 1000-5095/{len(data)}"
        tail = await http.get(url, headers={"Range": "bytes=-7"}, timeout=quick)
        assert tail.status == 206 and await tail.read() == data[-7:]
        head = await http.head(url, timeout=quick)
        assert head.status == 200 and head.headers["Content-Length"] == str(len(data))
        # a token of its own, or a conditional: spigot's to judge, and spigot is stopped
        for asks in ({"Authorization": "Bearer x"}, {"If-None-Match": first.headers["ETag"]}):
            with pytest.raises(asyncio.TimeoutError):
                await http.get(url, headers=asks, timeout=aiohttp.ClientTimeout(total=1))
    # and back with spigot: those are its answers, and a matching If-None-Match is its 304
    same = await http.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert same.status == 304


async def test_what_spigot_refuses_through_the_link_path_is_its_json(
    front: Front, http: aiohttp.ClientSession
) -> None:
    """A forged or expired link, a range past the end, a deleted file: each reaches the
    client as spigot's JSON error, never as nginx's page or a 500; an answer kept for a
    link ends with the link, and a deleted file is gone at once."""
    data = os.urandom(5000)
    url = await signed_link(http, front, data, "2s")
    assert (await http.get(url)).status == 200  # kept, for the link's last second or two
    forged = await http.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
    assert forged.status == 403 and forged.content_type == "application/json"
    assert (await forged.json())["error"]["code"] == "bad_signature"
    past = await http.get(url, headers={"Range": "bytes=9000-"})
    assert past.status == 416 and past.headers.getall("Content-Type") == ["application/json"]
    assert past.headers["Content-Range"] == "bytes */5000"
    await asyncio.sleep(3.2)  # the link has expired, and with it what nginx kept
    late = await http.get(url)
    assert late.status == 403 and (await late.json())["error"]["code"] == "bad_signature"
    url = await signed_link(http, front, data, "1h")
    assert (await http.get(url)).status == 200
    file_url = url.split("?", 1)[0]
    assert (await http.delete(file_url)).status == 204
    for _ in range(30):  # nginx checks the descriptors it keeps once a second
        gone = await http.get(url)
        if gone.status != 200:
            break
        await asyncio.sleep(0.1)
    assert gone.status == 404 and (await gone.json())["error"]["code"] == "not_found"
