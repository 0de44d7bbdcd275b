"""One writer per upload across instances, with no sticky sessions: a lease object.

`{id}.lock` is taken with a conditional write, `PutObject If-None-Match: *`, which S3 (and
MinIO, R2, moto) lets exactly one writer win. The holder renews it every `ttl / 3` with
`If-Match: <its ETag>`; a failed renewal means another instance took the lease over, and the
holder stops at once.

A waiter that finds the lease held asks the holder to let go, as tusd and @tus/server do:
in this process by calling the holder's `release` callback, across instances by writing
`{id}.release`, which holders look for every `watch` seconds. A PATCH hanging on a dead
connection then stores what it has and gives way.

A holder that died cannot answer. The waiter then watches the lease's ETag: unchanged for
a whole `ttl` (timed on the waiter's own clock, so clock skew between machines does not
matter) means nobody renews it, and the waiter replaces it with `If-Match`, which fails if
the holder came back to life in the meantime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable

from ..errors import LockTimeout, StorageError
from .client import S3, S3Error, is_conflict, is_missing

POLL = 0.1  # how often a waiter retries
SEEN_LIMIT = 1024  # lease observations kept before old ones are dropped
SEEN_AGE = 600.0  # an observation this old belongs to a waiter that gave up


class LeaseLocker:
    def __init__(
        self,
        s3: S3,
        key_of: Callable[[str, str], str],
        ttl: float = 15.0,
        timeout: float = 10.0,
        watch: float = 0.5,
    ) -> None:
        self._s3 = s3
        self._key = key_of
        self.ttl = ttl
        self.timeout = timeout
        self.watch = watch
        self.owner = secrets.token_hex(8)
        self._holders: dict[str, Callable[[], None]] = {}
        self._seen: dict[str, tuple[str, float]] = {}  # id -> (lease ETag, first seen)

    @contextlib.asynccontextmanager
    async def lock(self, upload_id: str, release: Callable[[], None]) -> AsyncIterator[None]:
        etag = await self._acquire(upload_id)
        # A release request there now was addressed to an earlier holder: perhaps our own
        # asking while the lease was a dead instance's. Left in place it would make us let
        # go at once. A waiter still waiting asks again within `2 * watch`.
        with contextlib.suppress(StorageError):
            await self._s3.call("delete_object", Key=self._key(upload_id, "release"), control=True)
        self._holders[upload_id] = release
        keeper = asyncio.ensure_future(self._keep(upload_id, etag, release))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                etag = await keeper
            self._holders.pop(upload_id, None)
            await asyncio.shield(self._drop(upload_id, etag))

    async def _acquire(self, upload_id: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        next_ask = 0.0
        while True:
            etag = await self._try(upload_id)
            if etag is not None:
                return etag
            now = loop.time()
            if now >= deadline:
                raise LockTimeout(upload_id)
            if now >= next_ask:  # ask (again) whoever holds it to let go
                next_ask = now + self.watch * 2
                holder = self._holders.get(upload_id)
                if holder is not None:
                    holder()
                else:
                    await self._s3.call(
                        "put_object",
                        Key=self._key(upload_id, "release"),
                        Body=self.owner.encode(),
                        control=True,
                    )
            await asyncio.sleep(POLL)

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "ttl": self.ttl, "at": time.time()}).encode()

    async def _try(self, upload_id: str) -> str | None:
        """The new lease's ETag, or None while someone else holds a live one."""
        lock_key = self._key(upload_id, "lock")
        try:
            made = await self._s3.call(
                "put_object", Key=lock_key, Body=self._body(), IfNoneMatch="*", control=True
            )
            self._seen.pop(upload_id, None)
            return str(made["ETag"])
        except S3Error as exc:
            if not is_conflict(exc):
                raise
        try:
            current, ttl = await self._read(lock_key)
        except S3Error as exc:
            if is_missing(exc):
                return None  # released in between: try again
            raise
        now = time.monotonic()
        seen = self._seen.get(upload_id)
        if seen is None or seen[0] != current:
            self._remember(upload_id, current, now)
            return None
        if now - seen[1] < ttl:  # the holder's ttl: it renews on its own schedule
            return None
        try:  # nobody renewed it for a whole ttl: its holder is gone
            made = await self._s3.call(
                "put_object", Key=lock_key, Body=self._body(), IfMatch=current, control=True
            )
        except S3Error as exc:
            if is_conflict(exc) or is_missing(exc):
                return None
            raise
        self._seen.pop(upload_id, None)
        return str(made["ETag"])

    def _remember(self, upload_id: str, etag: str, now: float) -> None:
        """Note when a lease was first seen; observations of leases nobody waits for any
        more (the client gave up) are dropped, so the map stays small."""
        if len(self._seen) >= SEEN_LIMIT:
            cutoff = now - SEEN_AGE
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= cutoff}
        self._seen[upload_id] = (etag, now)

    async def _read(self, lock_key: str) -> tuple[str, float]:
        """The lease's ETag, and the ttl its holder promised to renew within."""
        got = await self._s3.call("get_object", Key=lock_key, control=True)
        body = await self._s3.run(got["Body"].read, control=True)
        try:
            ttl = float(json.loads(body)["ttl"])
        except (ValueError, KeyError, TypeError):
            ttl = self.ttl
        return str(got["ETag"]), max(ttl, self.ttl)

    async def _keep(self, upload_id: str, etag: str, release: Callable[[], None]) -> str:
        """While held: renew the lease, and act on release requests. Returns the last ETag."""
        lock_key = self._key(upload_id, "lock")
        release_key = self._key(upload_id, "release")
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + self.ttl / 3
        try:
            while True:
                await asyncio.sleep(self.watch)
                with contextlib.suppress(StorageError):  # S3 unreachable: ask again later
                    if await self._release_requested(release_key):
                        release()
                if loop.time() >= renew_at:
                    renew_at = loop.time() + self.ttl / 3
                    renewal = asyncio.ensure_future(self._renew(lock_key, etag))
                    try:
                        renewed = await asyncio.shield(renewal)
                    except asyncio.CancelledError:
                        # Released while the renewal was on its way: once S3 has it, the
                        # lease's ETag is the new one, and a drop with the old one would
                        # leave the lease for a whole ttl (a 423 for the next PATCH).
                        renewed = await renewal
                        return etag if renewed is None else renewed
                    if renewed == "":
                        release()  # taken over: stop writing now
                        return ""
                    etag = renewed or etag
        except asyncio.CancelledError:
            return etag

    async def _renew(self, lock_key: str, etag: str) -> str | None:
        """The renewed lease's ETag; "" if it was taken over; None if S3 was in trouble
        (the lease has time left: the next round retries)."""
        try:
            made = await self._s3.call(
                "put_object", Key=lock_key, Body=self._body(), IfMatch=etag, control=True
            )
        except S3Error as exc:
            return "" if is_conflict(exc) or is_missing(exc) else None
        except StorageError:
            return None
        return str(made["ETag"])

    async def _release_requested(self, release_key: str) -> bool:
        """Whether a waiter asked for the lease; the request is consumed."""
        try:
            await self._s3.call("head_object", Key=release_key, control=True)
        except S3Error as exc:
            if is_missing(exc):
                return False
            raise StorageError(f"checking {release_key} failed") from exc
        await self._s3.call("delete_object", Key=release_key, control=True)
        return True

    async def _drop(self, upload_id: str, etag: str) -> None:
        if not etag:
            return  # no longer ours
        with contextlib.suppress(S3Error):
            await self._s3.call(
                "delete_object", Key=self._key(upload_id, "lock"), IfMatch=etag, control=True
            )
