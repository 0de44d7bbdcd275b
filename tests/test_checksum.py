"""--checksum none: uploads get no sha256, and everything that named one still works.

The ETag becomes the quoted id, which the conditionals and If-Range judge by; the JSON says
`"sha256": null`; a draft creation's Repr-Digest is still checked, since the client asked
for it. In-process on both backends, then a real process for the flag's own wiring."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import SettingError, Settings
from tests.conftest import Backend, ClientFactory, SpigotProcess, sha256, start_spigot, stop_spigot
from tests.test_rufh_spec import repr_digest_checked

Client = TestClient  # type: ignore[type-arg]

BODY = os.urandom(3 << 20) + b"tail"  # over one S3 part's memory, over the direct receive's 1 MiB
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
async def client(aiohttp_client: ClientFactory, backend_store: Backend) -> Client:
    settings = Settings(storage=backend_store.storage, checksum="none")
    store = backend_store.new_store(checksum=False)
    return await aiohttp_client(create_app(settings, store))


async def test_a_one_shot_digest_field_is_still_checked(client: Client) -> None:
    """The declared sha-256 asks for the hash that --checksum none would skip."""
    from tests.test_uploads import sha256_field

    wrong = await client.put("/files/a", data=BODY, headers={"Repr-Digest": sha256_field(b"x")})
    assert wrong.status == 400 and (await wrong.json())["error"]["code"] == "digest_mismatch"
    right = await client.put("/files/a", data=BODY, headers={"Repr-Digest": sha256_field(BODY)})
    assert right.status == 201 and (await right.json())["sha256"] == sha256(BODY)


async def test_no_digest_is_claimed_without_a_sha256(client: Client) -> None:
    """Nothing computed the file's sha256, so no Repr-Digest or Digest names one."""
    doc = await (await client.post("/files/", data=BODY)).json()
    resp = await client.get(f"/files/{doc['id']}", headers={"Want-Digest": "SHA-256"})
    assert resp.status == 200 and sha256(await resp.read()) == sha256(BODY)
    assert "Repr-Digest" not in resp.headers and "Digest" not in resp.headers


async def test_a_one_shot_upload_has_its_id_for_etag(client: Client) -> None:
    created = await client.post("/files/", data=BODY, headers={"Content-Type": "video/mp4"})
    assert created.status == 201
    file = await created.json()
    assert file["sha256"] is None and file["size"] == len(BODY)
    etag = f'"{file["id"]}"'

    got = await client.get(f"/files/{file['id']}")
    assert got.status == 200
    assert got.headers["ETag"] == etag
    assert sha256(await got.read()) == sha256(BODY)

    unchanged = await client.get(f"/files/{file['id']}", headers={"If-None-Match": etag})
    assert unchanged.status == 304 and unchanged.headers["ETag"] == etag
    part = await client.get(
        f"/files/{file['id']}", headers={"Range": "bytes=100-199", "If-Range": etag}
    )
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(BODY)}"
    assert await part.read() == BODY[100:200]
    other = await client.get(
        f"/files/{file['id']}", headers={"Range": "bytes=100-199", "If-Range": '"other"'}
    )
    assert other.status == 200 and len(await other.read()) == len(BODY)
    refused = await client.get(f"/files/{file['id']}", headers={"If-Match": '"other"'})
    assert refused.status == 412


async def test_a_tus_upload_in_pieces_has_its_id_for_etag(client: Client) -> None:
    created = await client.post("/files/", headers={**TUS, "Upload-Length": str(len(BODY))})
    assert created.status == 201
    url = "/files/" + created.headers["Location"].rsplit("/", 1)[1]
    offset = 0
    for piece in (BODY[: 1 << 20], BODY[1 << 20 :]):
        patched = await client.patch(
            url,
            data=piece,
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert patched.status == 204
        offset = int(patched.headers["Upload-Offset"])
    assert offset == len(BODY)
    got = await client.get(url)
    assert got.status == 200
    assert got.headers["ETag"] == f'"{url.rsplit("/", 1)[1]}"'
    assert sha256(await got.read()) == sha256(BODY)


def test_the_setting_and_its_conflict() -> None:
    assert Settings.resolve({}, {}).checksum == "sha256"
    assert Settings.resolve({}, {"SPIGOT_CHECKSUM": "NONE"}).checksum == "none"
    assert Settings.resolve({"checksum": "none"}, {}).hashes is False
    with pytest.raises(SettingError, match="not a checksum"):
        Settings.resolve({"checksum": "md5"}, {})
    with pytest.raises(SettingError, match="--verify-direct-uploads"):
        Settings.resolve({"checksum": "none", "verify_direct_uploads": "true"}, {})


# -- a real process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpigotProcess]:
    data = tmp_path_factory.mktemp("nosum") / "data"
    data.mkdir()
    proc = start_spigot(data, "--checksum", "none")
    yield proc
    stop_spigot(proc)


def test_the_flag_reaches_the_store(server: SpigotProcess, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(BODY)
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--data-binary", f"@{source}",
         "-H", "Content-Type: application/octet-stream", f"{server.url}/files/"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    file = json.loads(out.stdout)
    assert file["sha256"] is None
    sidecars = [json.loads(p.read_text()) for p in server.data_dir.rglob("*.info")]
    assert [s["hashed"] for s in sidecars if s["id"] == file["id"]] == [False]
    fetched = tmp_path / "fetched.bin"
    got = subprocess.run(
        ["curl", "-sS", "--fail", "-D", "-", "-o", str(fetched), file["url"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fields = [line.partition(":") for line in got.stdout.splitlines()[1:]]
    headers = {name.strip().lower(): value.strip() for name, colon, value in fields if colon}
    assert headers["etag"] == f'"{file["id"]}"'
    assert sha256(fetched.read_bytes()) == sha256(BODY)


def test_a_repr_digest_is_still_checked(server: SpigotProcess) -> None:
    done = repr_digest_checked(server)
    assert json.loads(done.body)["sha256"] == hashlib.sha256(b"abcd").hexdigest()
