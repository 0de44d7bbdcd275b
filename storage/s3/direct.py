"""Direct uploads on S3: the client writes the object itself, with requests spigot presigns.

The object's key is the upload's own key, `{prefix}/{id}`, so once S3 holds it the upload
is an ordinary finished spigot upload (listed, downloadable with ranges). Its info records
the kind ("post" or "multipart") and, for multipart, the S3 upload id; the server binds
owner and limit to it. Nothing here trusts the client: the key is made here, a POST policy
names the exact key, type and size range, and completion lists the parts S3 really has and
checks their total before completing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base import StoredPart, Upload, UploadInfo, UploadSpec
from ..direct import named_parts
from ..errors import BadParts, OverLimit, StorageError
from ..ids import new_id
from . import layout
from .client import S3Error, is_missing
from .layout import Progress

if TYPE_CHECKING:
    from .store import S3Store


def _meta_fields(info: UploadInfo) -> dict[str, str]:
    from .store import object_metadata

    return {f"x-amz-meta-{k}": v for k, v in object_metadata(info).items()}


class S3Direct:
    """The DirectStore capability of S3Store, which delegates to this (see storage.base)."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    async def create_direct(self, spec: UploadSpec, kind: str) -> Upload:
        from .store import S3Upload, object_metadata

        assert kind in ("post", "multipart")
        info = UploadInfo.new(new_id(), spec)
        info.direct = kind
        if kind == "multipart":
            params: dict[str, Any] = {
                "Key": self.store.key(info.id),
                "Metadata": object_metadata(info),
            }
            if info.content_type:
                params["ContentType"] = info.content_type
            made = await self.store.s3.call("create_multipart_upload", **params)
            info.backend["multipart"] = str(made["UploadId"])
        await self.store.write_info(info)
        return S3Upload(self.store, info, Progress((), None), tail_possible=False)

    def direct_target(self, upload: Upload) -> tuple[str, str, str | None]:
        return (
            self.store.bucket,
            self.store.key(upload.info.id),
            upload.info.backend.get("multipart"),
        )

    async def presign_post(
        self, upload: Upload, content_type: str, limit: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        key = self.store.key(upload.info.id)
        fields = {
            "Content-Type": content_type,
            "success_action_status": "201",
            **_meta_fields(upload.info),
        }
        # boto3 adds conditions for the bucket, the key and its own x-amz-* fields only;
        # every field spigot sets is a condition too, or a client could change it.
        conditions: list[Any] = [
            ["content-length-range", 0, limit],
            {"key": key},
            *({name: value} for name, value in fields.items()),
        ]

        signed = await self.store.s3.run(
            self.store.s3.presign_post, key, fields, conditions, expires_in
        )
        url = str(signed["url"])
        return (url if url.endswith("/") else url + "/"), dict(signed["fields"])

    async def presign_part(self, upload: Upload, number: int, expires_in: int) -> str:
        if not 1 <= number <= layout.MAX_PARTS:
            raise ValueError("part numbers are 1 to 10,000")
        params = {
            "Key": self.store.key(upload.info.id),
            "UploadId": upload.info.backend["multipart"],
            "PartNumber": number,
        }
        return await self.store.s3.run(self.store.s3.presign, "upload_part", params, expires_in)

    async def list_direct_parts(self, upload: Upload) -> list[StoredPart]:
        listed = await self.store._list_parts(upload.info)
        if listed is None:
            raise StorageError(f"the multipart upload of {upload.info.id} is gone")
        return [StoredPart(p.number, p.etag, p.size) for p in listed]

    async def complete_direct(
        self, upload: Upload, parts: Sequence[tuple[int, str]], limit: int
    ) -> UploadInfo:
        info = upload.info
        if info.is_complete:
            return info
        stored = {p.number: p for p in await self.list_direct_parts(upload)}
        named, total = named_parts(parts, stored)
        if total > limit:
            await upload.delete()  # aborts the multipart upload: no parts left to bill
            raise OverLimit(total, limit)
        try:
            done = await self.store.s3.call(
                "complete_multipart_upload",
                Key=self.store.key(info.id),
                UploadId=info.backend["multipart"],
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in named]},
            )
        except S3Error as exc:
            if exc.code in ("InvalidPart", "InvalidPartOrder"):
                raise BadParts(f"S3 refused the parts as named: {exc.code}") from None
            raise
        return await self._register(upload, total, str(done["ETag"]))

    async def recognise_direct(self, upload: Upload, limit: int) -> bool:
        info = upload.info
        if info.is_complete:
            return True
        try:
            head = await self.store.s3.call("head_object", Key=self.store.key(info.id))
        except S3Error as exc:
            if is_missing(exc):
                return False
            raise
        size = int(head["ContentLength"])
        if size > limit:  # S3 enforces the policy; a store that does not is caught here
            await upload.delete()
            raise OverLimit(size, limit)
        await self._register(upload, size, str(head["ETag"]))
        return True

    async def _register(self, upload: Upload, size: int, etag: str) -> UploadInfo:
        info = upload.info
        info.length = info.offset = size
        info.etag = etag if etag.startswith('"') else f'"{etag}"'
        info.completed = time.time()
        info.expires = None  # the multipart id stays in the info: it binds retried completes
        await self.store.write_info(info)
        self.store.finished.remember(info)
        _mark_written(upload)
        return info

    async def hash_direct(self, upload: Upload) -> str:
        from .store import S3Upload

        assert isinstance(upload, S3Upload)
        digest = await upload.hash_object()
        upload.info.sha256 = digest
        await self.store.write_info(upload.info)
        self.store.finished.remember(upload.info)
        return digest


def _mark_written(upload: Upload) -> None:
    from .store import S3Upload

    if isinstance(upload, S3Upload):
        upload.object_written = True
        upload.stored = None
