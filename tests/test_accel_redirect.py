"""--accel-redirect: spigot does every check, then hands the bytes to nginx by path."""

from __future__ import annotations

import hashlib

import pytest

from server.settings import SettingError, parse_accel_prefix
from tests.conftest import ClientFactory
from tests.test_auth import bearer, jwt_client, token


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("/_spigot_files/", True),
        ("/a/b-c.d~e/", True),
        ("_spigot_files/", False),
        ("/_spigot_files", False),
        ("/a//b/", False),
        ("/a/../b/", False),
        ("/a b/", False),
    ],
)
def test_the_prefix(value: str, ok: bool) -> None:
    if ok:
        assert parse_accel_prefix(value) == value
    else:
        with pytest.raises(SettingError):
            parse_accel_prefix(value)


async def test_get_answers_with_the_files_path_after_the_checks(
    make_client: ClientFactory, backend: str
) -> None:
    client = await jwt_client(make_client, accel_redirect="/_spigot_files/")
    alice = bearer(token())
    data = b"<html>active content</html>"
    put = await client.put("/files/page.html", data=data, headers=alice)
    file_id = (await put.json())["id"]
    resp = await client.get(f"/files/{file_id}", headers=alice)
    if backend == "s3":  # no local path to hand over: spigot sends the bytes itself
        assert resp.status == 200 and await resp.read() == data
        assert "X-Accel-Redirect" not in resp.headers
        return
    assert resp.status == 200 and await resp.read() == b""
    assert resp.headers["X-Accel-Redirect"] == f"/_spigot_files/{file_id}"
    assert resp.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # the checks still come first: no token, another owner, a matching If-None-Match
    assert (await client.get(f"/files/{file_id}")).status == 401
    bob = await client.get(f"/files/{file_id}", headers=bearer(token(sub="bob")))
    assert bob.status == 404 and "X-Accel-Redirect" not in bob.headers
    same = await client.get(
        f"/files/{file_id}", headers={**alice, "If-None-Match": resp.headers["ETag"]}
    )
    assert same.status == 304 and "X-Accel-Redirect" not in same.headers
    # HEAD spigot answers itself, with the length
    head = await client.head(f"/files/{file_id}", headers=alice)
    assert head.headers["Content-Length"] == str(len(data))
    assert "X-Accel-Redirect" not in head.headers
