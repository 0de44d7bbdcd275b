"""S3 failing under a running spigot: clients get the JSON 500 `storage_error`, never a
trace, and "the bucket is gone" is not mistaken for "the upload is gone"."""

from __future__ import annotations

from typing import Any

from tests.conftest import BUCKET, Backend

BACKENDS = ("s3",)


def remove_bucket(s3: Any) -> None:
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    for mpu in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=mpu["Key"], UploadId=mpu["UploadId"])
    s3.delete_bucket(Bucket=BUCKET)


async def test_a_bucket_removed_under_spigot_is_a_storage_error(
    make_client: Any, backend_store: Backend
) -> None:
    client = await make_client()
    made = await client.put("/files/a.txt", data=b"hello")
    assert made.status == 201
    url = "/files/" + (await made.json())["id"]
    assert await (await client.get(url)).read() == b"hello"  # its info is cached now

    remove_bucket(backend_store.s3)

    got = await client.get(url)
    assert got.status == 500
    assert got.headers["Content-Type"].startswith("application/json")
    assert await got.json() == {
        "error": {"code": "storage_error", "message": "the storage backend failed"}
    }
    put = await client.put("/files/b.txt", data=b"world")
    assert put.status == 500
    assert (await put.json())["error"]["code"] == "storage_error"
    tus = await client.post("/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5"})
    assert tus.status == 500
    assert (await tus.json())["error"]["code"] == "storage_error"
