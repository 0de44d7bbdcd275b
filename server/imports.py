"""Server-side import from a URL: fetch a remote file into storage in the background.

Every import goes through the proxy's guarded client (the same SSRF rules and size limit)
and into the configured store through the DataStore interface, so disk and S3 work alike.
A dropped upstream connection is resumed from the bytes already stored when the upstream
supports ranges (`Range` + `If-Range`, so a changed file is never spliced), with backoff;
otherwise the import fails and its partial file is removed. Jobs run at most
`--import-concurrency` at a time; more wait in a bounded queue.

A job can be paused (Companion's `pause`, which Uppy sends when a person pauses the file)
where it could resume: its upstream connection is closed, what it stored stays, and its
slot goes to the next job. `resume` takes a slot again and asks for the rest with `Range`
and `If-Range`, as after a dropped connection. A pause lasts at most until the partial
upload would expire and be swept. An upstream that cannot resume is not paused: stopping
reading would only hold its connection open until one side timed it out, and lose the file.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from storage import DataStore, StorageError, Upload, UploadSpec
from storage.names import sanitize_name

from .lifecycle import Lifecycle, complete_event
from .lifecycle.events import UploadEvents
from .protocol.media import declared_media_type
from .protocol.ssrf import Refused
from .proxy.upstream import Timeouts, open_upstream
from .settings import Settings

log = logging.getLogger("spigot.imports")

ATTEMPTS = 5
BACKOFF = 0.5  # seconds, doubled per retry
KEEP_FINISHED = 1000  # finished jobs remembered for GET /imports/{id}


class ImportRejected(Exception):
    """The import cannot even be queued (queue full)."""


class ImportFailed(Exception):
    pass


CANCELLED = "the import was cancelled"
SHUT_DOWN = "the server shut down"


@dataclass
class ImportJob:
    id: str
    url: str
    name: str | None
    owner: str | None = None  # who asked: the file is theirs, and so is this job's status
    state: str = "queued"  # queued, running, complete, error
    received: int = 0
    total: int | None = None
    file_id: str | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    stopped: str | None = None  # why it was told to stop: a cancel, or the shutdown
    queued: bool = True  # counted among the jobs waiting for a slot
    resumable: bool = False  # the upstream serves ranges, with a validator: it may pause
    paused: bool = False  # asked to pause, and not resumed since
    unpaused: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def topic(self) -> str:
        return f"import:{self.id}"

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "state": self.state,
            "bytes": self.received,
            "total": self.total,
            "file": f"{base_url}/files/{self.file_id}" if self.file_id else None,
            "error": self.error,
            "events": f"/imports/{self.id}/events",
        }


class _Slot:
    """A job's place among the `--import-concurrency` that run at once, which a paused job
    gives back and takes again, and whose release happens once however the job ends."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False

    async def take(self) -> None:
        await self._slots.acquire()  # a cancel while waiting leaves nothing taken
        self._held = True

    def give(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


class Importer:
    def __init__(
        self,
        settings: Settings,
        store: DataStore,
        lifecycle: Lifecycle,
        session: aiohttp.ClientSession,
    ) -> None:
        self._settings = settings
        self._store = store
        self._lifecycle = lifecycle
        self._session = session
        self._slots = asyncio.Semaphore(settings.import_concurrency)
        self._waiting = 0
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # by job id, until each ends
        # The upstream response each job is reading, while it stores what arrives.
        self._reading: dict[str, aiohttp.ClientResponse] = {}

    @property
    def events(self) -> UploadEvents:
        return self._lifecycle.events

    def get(self, job_id: str) -> ImportJob | None:
        return self._jobs.get(job_id)

    def submit(
        self, url: str, name: str | None, base_url: str, owner: str | None = None
    ) -> ImportJob:
        if self._waiting >= self._settings.import_queue:
            raise ImportRejected("too many imports are waiting; try again later")
        job = ImportJob(id=secrets.token_urlsafe(16), url=url, name=name, owner=owner)
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP_FINISHED and next(iter(self._jobs.values())).state in (
            "complete",
            "error",
        ):
            self._jobs.popitem(last=False)
        self._waiting += 1
        task = asyncio.create_task(self._run(job, base_url))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._ended(job))
        return job

    def _dequeue(self, job: ImportJob) -> None:
        """The job waits no longer: it has a slot, or it ended (perhaps before it began)."""
        if job.queued:
            job.queued = False
            self._waiting -= 1

    def _ended(self, job: ImportJob) -> None:
        self._dequeue(job)  # a task cancelled before its first step never ran its body
        self._tasks.pop(job.id, None)
        if job.state in ("queued", "running", "paused"):
            self._fail(job, job.stopped or CANCELLED)

    def cancel(self, job_id: str) -> bool:
        """Stop a queued or running import; what it stored is removed. False if it has
        ended already.

        A job that is storing is not cancelled as a task: its store's calls run in threads
        that a cancellation does not stop, and one finishing after the upload's removal
        would leave part of it behind (an S3 object, a sidecar). Its upstream is closed
        instead, and the job stops between chunks, with no store call in flight. A job
        waiting for a slot, connecting or backing off has none, and is cancelled at once.
        """
        return self._stop(job_id, CANCELLED)

    def pause(self, job_id: str) -> bool:
        """Pause the job if it can resume where it stopped; False if it cannot, or ended.
        A job whose upstream is not known yet pauses once it is, if that one can resume."""
        job = self._jobs.get(job_id)
        if job is None or job.state in ("complete", "error") or job.stopped is not None:
            return False
        job.paused = True
        job.unpaused.clear()
        reading = self._reading.get(job_id)
        if reading is not None and job.resumable:
            reading.close()  # it stops between chunks, with no store call in flight
        return job.resumable or reading is None

    def resume(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or not job.paused:
            return False
        job.paused = False
        job.unpaused.set()
        return True

    def _stop(self, job_id: str, why: str) -> bool:
        task, job = self._tasks.get(job_id), self._jobs.get(job_id)
        if task is None or job is None or job.state in ("complete", "error"):
            return False
        job.stopped = why
        reading = self._reading.get(job_id)
        if reading is not None:
            reading.close()
        else:
            task.cancel()
        return True

    async def close(self) -> None:
        """Shutting down: every import stops as a cancelled one does, and leaves nothing."""
        tasks = list(self._tasks.values())
        for job_id in list(self._tasks):
            self._stop(job_id, SHUT_DOWN)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: ImportJob, base_url: str) -> None:
        slot = _Slot(self._slots)
        try:
            try:
                await slot.take()
                self._dequeue(job)
                job.state = "running"
                self._progress(job)
                upload = await self._fetch(job, slot)
            finally:
                slot.give()
        except (ImportFailed, Refused, StorageError) as exc:
            self._fail(job, str(exc))
            return
        except asyncio.CancelledError:
            if job.stopped is not None:
                self._fail(job, job.stopped)
                return
            self._fail(job, SHUT_DOWN)
            raise
        except Exception as exc:  # never let a background job die silently
            log.exception("import %s failed", job.id)
            self._fail(job, f"internal error: {type(exc).__name__}")
            return
        job.state = "complete"
        job.file_id = upload.info.id
        url = f"{base_url}/files/{upload.info.id}"
        await self._lifecycle.finished(upload, url)
        self.events.publish(
            job.topic(),
            "complete",
            {"id": job.id, "file": complete_event(upload.info, url)},
        )

    def recall(self, job_id: str, base_url: str) -> None:
        """Say again how an ended job ended, once its events have lingered out (5 minutes;
        jobs are kept for 1,000 more): a late reader then hears it, not silence."""
        job = self._jobs.get(job_id)
        if job is None or job.state not in ("complete", "error"):
            return
        if self.events.latest(job.topic()) is not None:
            return
        if job.state == "complete":
            file = {"id": job.file_id, "url": f"{base_url}/files/{job.file_id}"}
            self.events.publish(job.topic(), "complete", {"id": job.id, "file": file})
        else:
            self.events.publish(job.topic(), "error", {"id": job.id, "message": job.error})

    def _fail(self, job: ImportJob, message: str) -> None:
        job.state, job.error = "error", message
        self.events.publish(job.topic(), "error", {"id": job.id, "message": message})

    def _progress(self, job: ImportJob) -> None:
        self.events.publish(job.topic(), "progress", {"bytes": job.received, "total": job.total})

    async def _while_paused(self, job: ImportJob, slot: _Slot, upload: Upload | None) -> None:
        """Wait out a pause without a slot, until resumed or the upload would expire."""
        if not job.paused or (upload is not None and not job.resumable):
            return
        slot.give()
        job.state = "paused"
        self._progress(job)
        expires = upload.info.expires if upload is not None else None
        left = (expires - time.time()) if expires else self._settings.upload_ttl
        try:
            await asyncio.wait_for(job.unpaused.wait(), max(left, 0.0))
        except TimeoutError:
            raise ImportFailed("the import stayed paused until its upload expired") from None
        await slot.take()
        job.state = "running"
        self._progress(job)

    async def _fetch(self, job: ImportJob, slot: _Slot) -> Upload:
        settings = self._settings
        timeouts = Timeouts(
            settings.proxy_connect_timeout,
            settings.proxy_first_byte_timeout,
            settings.proxy_idle_timeout,
        )
        upload: Upload | None = None
        validator: str | None = None
        delay = BACKOFF
        attempt = 0  # failed attempts; a pause is none
        try:
            while attempt < ATTEMPTS:
                await self._while_paused(job, slot, upload)
                attempt += 1
                offset = upload.info.offset if upload else 0
                headers = {}
                if offset:
                    headers = {"Range": f"bytes={offset}-"}
                    if validator:
                        headers["If-Range"] = validator
                try:
                    response = await open_upstream(
                        self._session,
                        "GET",
                        job.url,
                        headers,
                        timeouts,
                        settings.insecure_proxy_allow_private,
                    )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if attempt == ATTEMPTS:
                        raise ImportFailed(f"could not reach the upstream: {exc}") from None
                else:
                    self._reading[job.id] = response
                    try:
                        if upload is None:
                            upload, validator = await self._begin(job, response)
                        else:
                            self._check_resume(response, offset)
                        await self._receive(job, upload, response)
                        self._check_cancelled(job)
                        if upload.info.length is None or upload.info.offset == upload.info.length:
                            await upload.finish()
                            return upload
                        if job.paused and job.resumable:
                            response.close()  # not drained: the rest is asked for again
                            attempt -= 1  # it stopped as asked; nothing failed
                            continue
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        self._check_cancelled(job)  # its upstream was closed for it
                        if job.paused and job.resumable:
                            attempt -= 1
                            continue
                        if not job.resumable or attempt == ATTEMPTS:
                            raise ImportFailed(f"the upstream connection failed: {exc}") from None
                    finally:
                        del self._reading[job.id]
                        response.release()
                await asyncio.sleep(delay)
                delay *= 2
            raise ImportFailed("the upstream kept failing")
        except BaseException:
            if upload is not None:
                await asyncio.shield(upload.delete())
            raise

    async def _begin(
        self, job: ImportJob, response: aiohttp.ClientResponse
    ) -> tuple[Upload, str | None]:
        if response.status != 200:
            raise ImportFailed(f"the upstream answered {response.status}")
        total = response.content_length
        cap = self._settings.proxy_max_size
        if cap and total is not None and total > cap:
            raise ImportFailed(f"the file is larger than {cap} bytes")
        job.total = total
        name = job.name or job.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        upload = await self._store.create(
            UploadSpec(
                name=sanitize_name(name),
                content_type=declared_media_type(response.headers.get("Content-Type")),
                length=total,
                expires=time.time() + self._settings.upload_ttl,
                owner=job.owner,
            )
        )
        ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes"
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        job.resumable = ranges and total is not None and validator is not None
        if job.paused and not job.resumable:
            log.info("import %s: the upstream cannot resume, so it is not paused", job.id)
        return upload, validator if job.resumable else None

    @staticmethod
    def _check_cancelled(job: ImportJob) -> None:
        if job.stopped is not None:
            raise ImportFailed(job.stopped)

    def _check_resume(self, response: aiohttp.ClientResponse, offset: int) -> None:
        content_range = response.headers.get("Content-Range", "")
        if response.status != 206 or not content_range.startswith(f"bytes {offset}-"):
            raise ImportFailed("the upstream file changed or no longer serves ranges")

    async def _receive(
        self, job: ImportJob, upload: Upload, response: aiohttp.ClientResponse
    ) -> None:
        cap = self._settings.proxy_max_size
        last = 0.0

        async def chunks() -> Any:
            nonlocal last
            async for chunk in response.content.iter_any():
                self._check_cancelled(job)
                if job.paused and job.resumable:
                    return  # paused before its upstream was known: it stops here
                job.received += len(chunk)
                if cap and job.received > cap:
                    raise ImportFailed(f"the file grew past {cap} bytes")
                now = time.monotonic()
                if now - last >= 0.25:
                    last = now
                    self._progress(job)
                yield chunk

        try:
            await upload.append(upload.info.offset, chunks())
        finally:
            job.received = upload.info.offset  # what is stored, not what was in flight
            self._progress(job)
