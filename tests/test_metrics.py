"""GET /metrics, /readyz, X-Request-ID and JSON logs.

Metrics are read with prometheus_client's own text parser. The counters are checked to
move by exactly what a known sequence of requests should add. They are process-wide, so
every check is a difference between two scrapes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from server.protocol.tus import encode_metadata
from tests.conftest import Backend, ClientFactory, start_spigot, stop_spigot
from tests.test_auth import bearer, jwt_client, on_loopback, path_of, token
from tests.test_presign_browser import free_port

TUS = {"Tus-Resumable": "1.0.0"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: object, headers: dict[str, str] | None = None) -> Samples:
    resp = await client.get("/metrics", headers=headers or {})  # type: ignore[attr-defined]
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await resp.text())


async def test_counters_move_by_exactly_what_happened(
    make_client: ClientFactory, backend: str
) -> None:
    client = await make_client()
    before = await scrape(client)
    bodies = [os.urandom(1000), os.urandom(2345)]
    ids = []
    for i, body in enumerate(bodies):
        resp = await client.put(f"/files/f{i}.bin", data=body)
        assert resp.status == 201
        ids.append((await resp.json())["id"])
    assert (await client.get(f"/files/{ids[0]}")).status == 200
    assert (await client.get("/files/AAAAAAAAAAAAAAAAAAAAAA")).status == 404
    made = await client.post(
        "/files/",
        headers={**TUS, "Upload-Length": "5", "Upload-Metadata": encode_metadata({"a": "b"})},
    )
    url = path_of(made.headers["Location"])
    patched = await client.patch(
        url,
        data=b"hello",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert patched.status == 204
    doomed = path_of(
        (await client.post("/files/", headers={**TUS, "Upload-Length": "9"})).headers["Location"]
    )
    assert (await client.delete(doomed, headers=TUS)).status == 204
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "spigot_http_requests_total"
    assert moved(requests, method="PUT", route="/files/{name}", status="201") == 2
    assert moved(requests, method="GET", route="/files/{id}", status="200") == 1
    assert moved(requests, method="GET", route="/files/{id}", status="404") == 1
    assert moved(requests, method="POST", route="/files/", status="201") == 2
    assert moved(requests, method="PATCH", route="/files/{id}", status="204") == 1
    assert moved(requests, method="DELETE", route="/files/{id}", status="204") == 1
    assert moved(requests, method="GET", route="/metrics", status="200") == 1  # the first
    assert moved("spigot_http_request_duration_seconds_count", route="/files/{name}") == 2
    assert moved("spigot_http_received_bytes_total") == sum(map(len, bodies)) + 5
    assert moved("spigot_http_sent_bytes_total") > 1000  # the GET's body, and every header
    assert moved("spigot_uploads_total", event="created") == 4
    assert moved("spigot_uploads_total", event="finished") == 3
    assert moved("spigot_uploads_total", event="terminated") == 1
    assert value(after, "spigot_uploads_in_flight") == 0
    assert value(after, "spigot_build_info", version="0.1.0", python=_python()) == 1
    if backend == "s3":  # every S3 call timed by operation
        assert (
            moved("spigot_s3_request_duration_seconds_count", operation="PutObject", outcome="ok")
            > 0
        )
        assert (
            moved("spigot_s3_request_duration_seconds_count", operation="HeadObject", outcome="404")
            >= 0
        )


def _python() -> str:
    import platform

    return platform.python_version()


async def test_event_stream_subscribers_are_a_gauge(make_client: ClientFactory) -> None:
    client = await make_client()
    made = await client.post("/files/", headers={**TUS, "Upload-Length": "5"})
    url = path_of(made.headers["Location"])
    before = value(await scrape(client), "spigot_sse_subscribers")
    stream = await client.get(f"{url}/events")
    await stream.content.readline()
    assert value(await scrape(client), "spigot_sse_subscribers") == before + 1
    stream.close()
    for _ in range(50):
        if value(await scrape(client), "spigot_sse_subscribers") == before:
            break
        await asyncio.sleep(0.05)
    assert value(await scrape(client), "spigot_sse_subscribers") == before


async def test_sweeps_proxy_and_hooks_are_counted(make_client: ClientFactory) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"
    client = await make_client(
        sweep_interval=0.05,
        insecure_proxy_unsigned=True,
        insecure_proxy_allow_private=True,
        hook_url=dead,
    )
    before = await scrape(client)
    put = await client.put("/files/p.bin", data=b"x" * 4096)  # the hook is told: and fails
    file_url = str(client.make_url(f"/files/{(await put.json())['id']}"))
    proxied = await client.get("/proxy", params={"url": file_url})
    assert proxied.status == 200 and len(await proxied.read()) == 4096
    unreachable = await client.get("/proxy", params={"url": f"http://127.0.0.1:{free_port()}/"})
    assert unreachable.status == 502
    await asyncio.sleep(0.3)
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("spigot_proxy_sent_bytes_total") == 4096
    assert moved("spigot_proxy_upstream_errors_total", reason="unreachable") == 1
    assert moved("spigot_sweep_runs_total") >= 2
    assert moved("spigot_sweep_duration_seconds_count") == moved("spigot_sweep_runs_total")
    assert moved("spigot_hook_calls_total", hook="webhook") >= 1
    assert moved("spigot_hook_failures_total", hook="webhook") >= 1


async def test_metrics_are_protected_when_auth_is_on(make_client: ClientFactory) -> None:
    client = await jwt_client(make_client)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=bearer(token(scope="read")))).status == 403
    await scrape(client, bearer(token(scope="admin")))
    with_token = await jwt_client(make_client, metrics_token="a-scrape-token-0123456789")
    await scrape(with_token, bearer("a-scrape-token-0123456789"))
    wrong = await with_token.get("/metrics", headers=bearer("not-the-scrape-token-012"))
    assert wrong.status == 401
    assert (await with_token.get("/metrics", headers=bearer(token(scope="admin")))).status == 401


async def test_readyz_asks_the_store(
    make_client: ClientFactory, backend: str, backend_store: Backend
) -> None:
    client = await make_client()
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    if backend == "s3":
        from tests.test_s3_errors import remove_bucket

        remove_bucket(backend_store.s3)
    else:  # root ignores permissions: make the store's temp directory a file instead
        tmp = Path(backend_store.storage.removeprefix("file://")) / ".tmp"
        tmp.rmdir()
        tmp.write_text("in the way")
    broken = await client.get("/readyz")
    assert broken.status == 503
    body = await broken.json()
    assert body["status"] == "unavailable" and body["error"]["code"] == "storage_unavailable"
    assert (await client.get("/healthz")).status == 200  # liveness does not ask the store


async def test_request_ids_are_kept_or_made(make_client: ClientFactory) -> None:
    client = await make_client()
    kept = await client.get("/healthz", headers={"X-Request-ID": "edge-1234"})
    assert kept.headers["X-Request-ID"] == "edge-1234"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    streamed = await client.get("/files/")  # a streamed response gets it too
    assert re.fullmatch(r"[0-9a-f]{32}", streamed.headers["X-Request-ID"])


def test_json_logs_carry_the_request_and_no_secret(data_dir: Path) -> None:
    secret = "sig-value-never-logged-0123456789"
    tok = "token-value-never-logged-0123456789"
    server = start_spigot(data_dir, "--log-format", "json", env={"SPIGOT_LOG_LEVEL": "info"})
    try:
        request = urllib.request.Request(
            f"{server.url}/files/AAAAAAAAAAAAAAAAAAAAAA?sig={secret}&access_token={tok}",
            headers={"X-Request-ID": "trace-42", "Authorization": f"Bearer {tok}"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.headers["X-Request-ID"] == "trace-42"
    finally:
        stop_spigot(server)
    logged = server.log()
    assert secret not in logged and tok not in logged
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "trace-42"]
    assert len(access) == 1, logged
    entry = access[0]
    assert entry["method"] == "GET" and entry["route"] == "/files/{id}"
    assert entry["status"] in (400, 403, 404) and entry["bytes"] > 0
    assert entry["level"] == "info" and entry["logger"] == "aiohttp.access"
    assert isinstance(entry["duration"], float) and "time" in entry
    assert "REDACTED" in entry["target"]


def test_workers_share_the_port_and_their_metrics_add_up(data_dir: Path) -> None:
    server = start_spigot(data_dir, "--workers", "2")
    try:
        pids: set[int] = set()
        asked = 0
        deadline = time.monotonic() + 30
        while (len(pids) < 2 or asked < 40) and time.monotonic() < deadline:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as resp:
                pids.add(json.loads(resp.read())["pid"])  # a new connection each time
            asked += 1
        assert len(pids) == 2, "both workers answer"
        children = _children(server.pid)
        assert sorted(children) == sorted(pids)
        for _ in range(4):  # whichever worker takes the scrape, it counts them all
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
                samples = parse(resp.read().decode())
            total = value(
                samples, "spigot_http_requests_total", method="GET", route="/healthz", status="200"
            )
            assert total == asked
        # a worker that dies is replaced; what it counted stays counted
        os.kill(children[0], signal.SIGKILL)
        for _ in range(100):
            now = _children(server.pid)
            if len(now) == 2 and children[0] not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and children[0] not in now
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
            samples = parse(resp.read().decode())
        assert (
            value(
                samples, "spigot_http_requests_total", method="GET", route="/healthz", status="200"
            )
            == asked
        )
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
    assert _children(server.pid) == []


def test_a_metrics_port_serves_metrics_on_loopback_alone(data_dir: Path) -> None:
    port = free_port()
    server = start_spigot(data_dir, "--metrics-port", str(port))
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.url}/metrics", timeout=10)
        assert missing.value.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert "spigot_http_requests_total" in resp.read().decode()
    finally:
        stop_spigot(server)


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`, from /proc (no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


async def test_hooks_are_sent_the_request_id(make_client: ClientFactory) -> None:
    seen: dict[str, list[str | None]] = {"auth": [], "webhook": []}

    async def auth(request: web.Request) -> web.Response:
        seen["auth"].append(request.headers.get("X-Request-ID"))
        return web.json_response({"sub": "alice", "scope": "upload read"})

    async def webhook(request: web.Request) -> web.Response:
        seen["webhook"].append(request.headers.get("X-Request-ID"))
        return web.Response(status=204)

    async with (
        on_loopback("POST", "/auth", auth) as auth_url,
        on_loopback("POST", "/hook", webhook) as hook_url,
    ):
        client = await make_client(auth="hook", auth_hook_url=auth_url, hook_url=hook_url)
        put = await client.put(
            "/files/r.bin", data=b"abc", headers={"X-Request-ID": "req-77", "Cookie": "sid=1"}
        )
        assert put.status == 201 and put.headers["X-Request-ID"] == "req-77"
        for _ in range(100):
            if len(seen["webhook"]) >= 2:
                break
            await asyncio.sleep(0.02)
    assert seen["auth"] == ["req-77"]
    assert seen["webhook"] == ["req-77", "req-77"]  # created, finished


def test_events_reach_a_stream_served_by_another_worker(data_dir: Path) -> None:
    """Two workers on local disk: the PATCH is made on a connection the other worker
    holds, and the event stream still sees its progress and completion (from the store)."""
    server = start_spigot(data_dir, "--workers", "2")
    host, port = server.url.removeprefix("http://").split(":")

    def connection() -> tuple[http.client.HTTPConnection, int]:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/healthz")
        return conn, json.loads(conn.getresponse().read())["pid"]

    try:
        watcher, watcher_pid = connection()
        for _ in range(50):
            writer, writer_pid = connection()
            if writer_pid != watcher_pid:
                break
            writer.close()
        assert writer_pid != watcher_pid
        writer.request("POST", "/files/", headers={**TUS, "Upload-Length": "6"})
        made = writer.getresponse()
        made.read()
        path = "/files/" + made.headers["Location"].rsplit("/", 1)[1]
        watcher.request("GET", f"{path}/events")
        stream = watcher.getresponse()
        assert stream.status == 200
        headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
        writer.request("PATCH", path, body=b"abc", headers={**headers, "Upload-Offset": "0"})
        first = writer.getresponse()
        first.read()
        assert first.status == 204
        offsets, complete = [], None
        deadline = time.monotonic() + 15
        while complete is None and time.monotonic() < deadline:
            line = stream.fp.readline().decode()
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if "sha256" in data:
                    complete = data
                else:
                    offsets.append(data["offset"])
                    if data["offset"] == 3:
                        writer.request(
                            "PATCH", path, body=b"def", headers={**headers, "Upload-Offset": "3"}
                        )
                        second = writer.getresponse()
                        second.read()
                        assert second.status == 204
        assert 3 in offsets, offsets
        assert complete is not None and complete["size"] == 6
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(20)


def test_workers_that_cannot_start_stop_the_server_with_the_reason() -> None:
    command = [sys.executable, "-m", "server", "serve", "--port", "0", "--workers", "2"]
    command += ["--storage", "s3://no-such-bucket/p", "--s3-endpoint-url", "http://127.0.0.1:9"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "spigot: error: the workers did not start (see above)"
    assert "cannot use bucket 'no-such-bucket'" in done.stderr
    assert "Traceback" not in done.stderr


async def test_made_up_methods_share_one_series(make_client: ClientFactory) -> None:
    """Methods beyond the usual seven (WebDAV's, which the parser knows) share one series:
    each must not make a series of its own, forever."""
    client = await make_client()
    before = await scrape(client)
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        resp = await client.request(method, "/files/")
        assert resp.status == 405
    after = await scrape(client)
    other = {"method": "other", "route": "unmatched", "status": "405"}
    assert (
        value(after, "spigot_http_requests_total", **other)
        - value(before, "spigot_http_requests_total", **other)
        == 3
    )
    assert not any(("method", "PROPFIND") in labels for _, labels in after)


def test_the_access_log_is_off_below_info() -> None:
    """aiohttp asks `enabled` before timing and logging a request: at warning, no work."""
    import logging

    from server.accesslog import AccessLogger

    logger = logging.getLogger("spigot.test-access")
    log = AccessLogger(logger, "")
    logger.setLevel(logging.WARNING)
    assert log.enabled is False
    logger.setLevel(logging.INFO)
    assert log.enabled is True


async def test_the_server_header_names_no_versions(make_client: ClientFactory) -> None:
    client = await make_client()
    for resp in (
        await client.get("/healthz"),
        await client.get("/files/no-such-file"),  # an error
        await client.get("/files/"),  # streamed
    ):
        assert resp.headers["Server"] == "spigot", resp.headers
