"""What happens around an upload's state changes: events for SSE readers, and hooks.

The routes and the sweep call these at each transition, so every way an upload is made
(one-shot, tus, concatenation) tells readers and hooks the same things.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from storage import Upload, UploadInfo, UploadSpec

from ..errors import ApiError
from ..ops import metrics
from .events import ProgressMeter, UploadEvents
from .hooks import HookRejected, Hooks, WebHook, call


def describe(info: UploadInfo, url: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": url,
        "name": info.name,
        "size": info.length,
        "offset": info.offset,
        "sha256": info.sha256,
        "metadata": info.metadata,
    }


def complete_event(info: UploadInfo, url: str) -> dict[str, Any]:
    """The data of a `complete` event, the same wherever an upload finishes."""
    return {
        "id": info.id,
        "url": url,
        "name": info.name,
        "size": info.length,
        "sha256": info.sha256,
    }


class Lifecycle:
    def __init__(self, hooks: Hooks, webhook: WebHook | None) -> None:
        self.events = UploadEvents()
        self.hooks = hooks
        self.webhook = webhook

    async def admit(self, spec: UploadSpec, request: web.Request) -> None:
        """Run the pre-create hook; a refusal is the client's error, with the hook's words."""
        try:
            await call(self.hooks.pre_create, spec, request)
        except HookRejected as exc:
            raise ApiError(exc.status, "rejected", exc.message) from None

    def created(self, info: UploadInfo, url: str) -> None:
        metrics.UPLOADS.labels("created").inc()
        self.events.publish(info.id, "progress", {"offset": info.offset, "length": info.length})
        self._notify("created", info, url)

    def meter(self, info: UploadInfo, *aliases: str) -> ProgressMeter:
        return ProgressMeter(self.events, info.id, info.offset, info.length, aliases=aliases)

    async def finished(self, upload: Upload, url: str, *aliases: str) -> None:
        """The post-finish step, once per upload.

        Callers call this only from the finish() that completed the upload (under its lock);
        the step is then recorded in the upload's info. Should the process die in between,
        the sweep finds the upload unannounced and runs the step then (`announce_missed`).
        """
        info = upload.info
        await call(self.hooks.post_finish, info)
        for topic in (info.id, *aliases):
            self.events.publish(topic, "complete", complete_event(info, url))
        self._notify("finished", info, url)
        metrics.UPLOADS.labels("finished").inc()
        await upload.mark_finish_announced()

    def terminated(self, info: UploadInfo, url: str, *aliases: str) -> None:
        for topic in (info.id, *aliases):
            self.events.publish(topic, "terminated", {"id": info.id})
        self._notify("terminated", info, url)
        metrics.UPLOADS.labels("terminated").inc()

    def expired(self, upload_id: str) -> None:
        metrics.UPLOADS.labels("expired").inc()
        self.events.publish(upload_id, "expired", {"id": upload_id})

    def _notify(self, event: str, info: UploadInfo, url: str) -> None:
        if self.webhook is not None:
            self.webhook.send({"event": event, "upload": describe(info, url)})
