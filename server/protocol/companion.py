"""Uppy Companion's URL-provider protocol, as `@uppy/url` and the uploader plugins speak it.

- `POST /url/meta {"url"}` answers `{"name", "type", "size", "statusCode"}` from the remote
  file's response head, for the file list before anything is fetched.
- `POST /url/get {"url", "metadata", "protocol", "endpoint", ...}` starts the transfer and
  answers `{"token"}`.
- A WebSocket at `/api/{token}` then carries `{"action", "payload"}` messages: `progress`
  (`progress` as a percentage string, `bytesUploaded`, `bytesTotal`), then `success`
  (`url`, the file's) or `error` (`error.message`). The client may send `pause`, `resume`
  and `cancel`.

This module turns spigot's import events into those messages and reads the two bodies; it
knows nothing of aiohttp or storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .disposition import filename_from_header
from .media import declared_media_type

CLIENT_ACTIONS = frozenset({"pause", "resume", "cancel"})


class CompanionError(ValueError):
    """A request body Companion would refuse: the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class GetRequest:
    url: str
    name: str | None  # the name Uppy shows, from its file's metadata


def requested_url(body: object) -> str:
    """The `url` of a `/url/meta` or `/url/get` body."""
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
        raise CompanionError('the body must be JSON with a "url" string')
    url: str = body["url"]
    return url


def get_request(body: object) -> GetRequest:
    """A `/url/get` body. Its `protocol` and `endpoint` name where Companion would upload
    the file; spigot keeps it in its own store, so they only have to be well formed."""
    url = requested_url(body)
    assert isinstance(body, dict)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise CompanionError('"metadata" must be an object')
    name = (metadata or {}).get("name")
    return GetRequest(url, name if isinstance(name, str) and name else None)


def url_meta(url: str, status: int, headers: dict[str, str]) -> dict[str, Any]:
    """`/url/meta`'s answer from the head of the remote file's response: its name (the
    Content-Disposition's, else the URL path's last segment), type and size."""
    length = headers.get("content-length", "")
    name = filename_from_header(headers.get("content-disposition"))
    return {
        "name": name or name_from_url(url),
        "type": declared_media_type(headers.get("content-type")),
        "size": int(length) if length.isascii() and length.isdigit() else None,
        "statusCode": status,
    }


def name_from_url(url: str) -> str:
    """The last segment of the URL's path, decoded, as Uppy's own fallback picks it."""
    path = urlsplit(url).path.rstrip("/")
    return unquote(path.rsplit("/", 1)[-1]) if path else ""


def socket_message(event: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The Companion message for one of an import's events (server/imports.py); None for
    one it has no message for."""
    if event == "progress":
        done, total = int(data.get("bytes") or 0), data.get("total")
        percent = f"{100 * done / total:.2f}" if total else "0.00"
        return {
            "action": "progress",
            "payload": {"progress": percent, "bytesUploaded": done, "bytesTotal": total},
        }
    if event == "complete":
        file = data["file"]
        # responseText is what Uppy hands the app as the upload's body: spigot's file JSON.
        response = {"status": 200, "responseText": json.dumps(file)}
        return {"action": "success", "payload": {"url": file["url"], "response": response}}
    if event == "error":
        return {"action": "error", "payload": {"error": {"message": str(data.get("message"))}}}
    return None


def client_action(text: str) -> str | None:
    """The action of a message from the client, if it is one spigot knows."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    action = message.get("action") if isinstance(message, dict) else None
    return action if action in CLIENT_ACTIONS else None
