"""Helpers shared by the routes: where a file lives, and how it is described in JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from storage import UploadInfo

from .context import settings_of
from .protocol.forwarded import base_url
from .protocol.media import served_type


def public_base(request: web.Request) -> str:
    return base_url(
        settings_of(request).public_url,
        list(request.forwarded),
        request.headers,
        request.scheme,
        request.host,
    )


def file_url(request: web.Request, upload_id: str) -> str:
    return f"{public_base(request)}/files/{upload_id}"


def file_json(info: UploadInfo, url: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "size": info.length,
        "sha256": info.sha256,
        "url": url,
        "content_type": served_type(info.content_type, info.name or info.id),  # as GET sends it
        "created": info.created,
        "owner": info.owner,
    }
