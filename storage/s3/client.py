"""boto3, off the event loop.

boto3 is the design card's choice. Its client is thread-safe, so every call runs in one
bounded pool of threads and the event loop only awaits. (aiobotocore would avoid the
threads, but its body streaming is built on aiohttp's client and it trails botocore's
releases; the pool keeps the well-trodden code path and costs one hand-off per call, small
next to a network round trip.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..base import CallCallback
from ..errors import StorageBusy, StorageError, StorageUnavailable

T = TypeVar("T")


class S3Error(StorageError):
    """A request S3 answered with an error. The store tells "missing" and "conflict" apart
    by its code and status; anything else reaches a client as a storage error, a 500 with
    the JSON body, and the log says which call failed and why."""

    def __init__(self, operation: str, code: str, status: int) -> None:
        super().__init__(f"S3 {operation} failed: {code or 'HTTP'} {status}".rstrip())
        self.code = code
        self.status = status

    @classmethod
    def of(cls, operation: str, exc: ClientError) -> S3Error:
        status = status_of(exc)
        kind = S3Unavailable if status >= 500 or code_of(exc) == "SlowDown" else cls
        return kind(operation, code_of(exc), status)


class S3Unavailable(S3Error, StorageBusy):
    """S3 answered 5xx or SlowDown even after botocore's retries."""


POOL_CONNECTIONS = 256


class S3:
    """The bucket, and a pool of threads that call it."""

    def __init__(self, bucket: str, endpoint_url: str | None, threads: int) -> None:
        self.bucket = bucket
        self._endpoint_url = endpoint_url
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="spigot-s3")
        # Leases get threads of their own: under load (bench/load.py) their small calls
        # queued behind range reads and parts for longer than the lock timeout, and
        # sequential PATCHes got 423.
        self._control = ThreadPoolExecutor(max_workers=4, thread_name_prefix="spigot-s3-lease")
        self._threads = threads
        self._client: Any = None
        self._observer: CallCallback | None = None

    async def connect(self) -> None:
        """Build the client (credentials come from the standard AWS chain) and check the
        bucket: a missing bucket or bad credentials stop start-up with one clear line."""
        self._client = await self.run(self._build)
        if self._observer is not None:
            self._watch(self._observer)
        await self.check_bucket()

    def observe_calls(self, callback: CallCallback) -> None:
        self._observer = callback
        if self._client is not None:
            self._watch(callback)

    def _watch(self, callback: CallCallback) -> None:
        """botocore's before-call and after-call events bracket each API call (retries
        included), in the thread that makes it."""

        # Timing must never break a call: each handler takes what botocore gives it
        # (after-call-error has no model), and keeps its own mistakes to itself.
        def started(context: dict[str, Any], **_: Any) -> None:
            context["spigot_started"] = time.perf_counter()

        def done(event_name: str, context: dict[str, Any], outcome: str) -> None:
            began = context.pop("spigot_started", None)
            if began is not None:
                with contextlib.suppress(Exception):
                    callback(event_name.rsplit(".", 1)[-1], time.perf_counter() - began, outcome)

        def ended(event_name: str, context: dict[str, Any], parsed: Any = None, **_: Any) -> None:
            error = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
            done(event_name, context, str(error or "ok"))

        def failed(event_name: str, context: dict[str, Any], **_: Any) -> None:
            done(event_name, context, "unreachable")  # no answer: the network, credentials

        events = self._client.meta.events
        events.register("before-call.s3", started, unique_id="spigot-started")
        events.register("after-call.s3", ended, unique_id="spigot-ended")
        events.register("after-call-error.s3", failed, unique_id="spigot-failed")

    async def check_bucket(self) -> None:
        """Raise StorageUnavailable, saying why, unless the bucket answers."""
        try:
            await self.run(functools.partial(self._client.head_bucket, Bucket=self.bucket))
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise StorageUnavailable(f"bucket {self.bucket!r} does not exist") from None
            if status in (401, 403):
                raise StorageUnavailable(
                    f"access to bucket {self.bucket!r} was refused: check the credentials"
                ) from None
            raise StorageUnavailable(f"bucket {self.bucket!r}: {code_of(exc)}") from None
        except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
            raise StorageUnavailable(f"cannot use bucket {self.bucket!r}: {exc}") from None

    def _build(self) -> Any:
        config = Config(
            # A download's GetObject holds its connection while the body streams, after the
            # thread is free; under load (bench/load.py) many more than `threads` do, and a
            # pool of `threads` logged "Connection pool is full" and reconnected each time.
            max_pool_connections=max(self._threads, POOL_CONNECTIONS),
            retries={"mode": "standard", "max_attempts": 5},
            # spigot hashes every byte itself (sha256); botocore's extra CRC pass would
            # cost a second read of each part for nothing.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",  # presigned URLs carry X-Amz-Expires
            connect_timeout=10,
            read_timeout=60,
            # Over TLS, the CRC32 that spigot sends with every part (and S3 checks) stands
            # in for signing the payload, as in boto3's own uploads; signing would sha256
            # every byte once more. Over plain HTTP botocore always signs it.
            s3={"payload_signing_enabled": False} if self._over_tls() else None,
        )
        return boto3.session.Session().client("s3", endpoint_url=self._endpoint_url, config=config)

    def _over_tls(self) -> bool:
        return self._endpoint_url is None or self._endpoint_url.lower().startswith("https:")

    async def run(self, fn: Callable[..., T], *args: Any, control: bool = False) -> T:
        """`fn(*args)` in a pool thread; `control` for the lease's calls, never queued
        behind data."""
        pool = self._control if control else self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def call(self, operation: str, *, control: bool = False, **params: Any) -> Any:
        """One S3 API call; Bucket is filled in. Every failure is a StorageError, so the
        HTTP layer answers it as one: S3Error when S3 answered, else (network,
        credentials) a plain StorageError."""
        method = getattr(self._client, operation)
        call = functools.partial(method, Bucket=self.bucket, **params)
        try:
            return await self.run(call, control=control)
        except ClientError as exc:
            raise S3Error.of(operation, exc) from exc
        except BotoCoreError as exc:
            raise StorageBusy(f"S3 {operation} failed: {exc}") from exc

    async def get_bytes(self, key: str, byte_range: str | None = None) -> bytes:
        """A whole (small) object or range, fetched and read in one thread hand-off."""

        def fetch() -> bytes:
            params = {"Bucket": self.bucket, "Key": key}
            if byte_range:
                params["Range"] = byte_range
            body = self._client.get_object(**params)["Body"]
            try:
                data: bytes = body.read()
                return data
            finally:
                body.close()

        try:
            return await self.run(fetch)
        except ClientError as exc:
            raise S3Error.of("get_object", exc) from exc
        except BotoCoreError as exc:
            raise StorageBusy(f"S3 get_object failed: {exc}") from exc

    def presign(self, operation: str, params: dict[str, Any], expires_in: int) -> str:
        """A presigned URL. Signing is local computation, no request is made."""
        url: str = self._client.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires_in
        )
        return url

    def presign_post(
        self, key: str, fields: dict[str, str], conditions: list[Any], expires_in: int
    ) -> dict[str, Any]:
        """A SigV4 POST policy (the client is s3v4, so never SigV2) and its form fields."""
        signed: dict[str, Any] = self._client.generate_presigned_post(
            Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )
        return signed

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._control.shutdown(wait=True)
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status_of(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_missing(exc: S3Error) -> bool:
    """The object or multipart upload asked for does not exist. A missing bucket is not
    that: it is the deployment that is broken, not the upload that is gone."""
    if exc.code == "NoSuchBucket":
        return False
    return exc.status == 404 or exc.code in ("NoSuchKey", "NoSuchUpload", "404")


def is_conflict(exc: S3Error) -> bool:
    """A conditional write lost: the object changed (412) or a concurrent one won (409)."""
    return exc.status in (409, 412) or exc.code in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
    )
