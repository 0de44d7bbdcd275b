"""Uppy Companion's URL-provider protocol: the bodies spigot reads and the messages it sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.protocol import companion


@pytest.mark.parametrize(
    ("body", "url", "name"),
    [
        ({"url": "https://e.com/a.iso"}, "https://e.com/a.iso", None),
        ({"url": "https://e.com/a", "metadata": {"name": "b.iso"}}, "https://e.com/a", "b.iso"),
        ({"url": "https://e.com/a", "metadata": {"name": ""}}, "https://e.com/a", None),
        ({"url": "https://e.com/a", "metadata": {"name": 3}}, "https://e.com/a", None),
        # what @uppy/tus adds: where Companion would upload it; spigot stores it itself
        ({"url": "https://e.com/a", "fileId": "https://e.com/a", "protocol": "tus",
          "endpoint": "https://spigot/files/", "size": 10, "headers": {}}, "https://e.com/a", None),
    ],
)  # fmt: skip
def test_get_request(body: Any, url: str, name: str | None) -> None:
    assert companion.get_request(body) == companion.GetRequest(url, name)


@pytest.mark.parametrize(
    "body", [None, [], {}, {"url": ""}, {"url": 5}, {"url": "https://e.com", "metadata": []}]
)
def test_a_bad_body_is_refused(body: Any) -> None:
    with pytest.raises(companion.CompanionError):
        companion.get_request(body)


@pytest.mark.parametrize(
    ("url", "headers", "meta"),
    [
        ("https://e.com/dir/big%20file.iso?x=1",
         {"content-type": "application/x-iso9660-image", "content-length": "1234"},
         {"name": "big file.iso", "type": "application/x-iso9660-image", "size": 1234}),
        ("https://e.com/download", {"content-disposition": 'attachment; filename="r.pdf"'},
         {"name": "r.pdf", "type": None, "size": None}),
        ("https://e.com/", {"content-length": "-1", "content-type": "not a type"},
         {"name": "", "type": None, "size": None}),
    ],
)  # fmt: skip
def test_url_meta(url: str, headers: dict[str, str], meta: dict[str, Any]) -> None:
    assert companion.url_meta(url, 200, headers) == {**meta, "statusCode": 200}


FILE = {"id": "A" * 22, "url": "http://s/files/" + "A" * 22, "name": "a", "size": 4, "sha256": "x"}


@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("progress", {"bytes": 25, "total": 100},
         {"action": "progress",
          "payload": {"progress": "25.00", "bytesUploaded": 25, "bytesTotal": 100}}),
        ("progress", {"bytes": 7, "total": None},  # no Content-Length upstream
         {"action": "progress",
          "payload": {"progress": "0.00", "bytesUploaded": 7, "bytesTotal": None}}),
        ("complete", {"id": "j", "file": FILE},
         {"action": "success",
          "payload": {"url": FILE["url"],
                      "response": {"status": 200, "responseText": json.dumps(FILE)}}}),
        ("error", {"id": "j", "message": "the upstream answered 404"},
         {"action": "error", "payload": {"error": {"message": "the upstream answered 404"}}}),
        ("terminated", {"id": "j"}, None),
    ],
)  # fmt: skip
def test_socket_message(event: str, data: dict[str, Any], message: Any) -> None:
    assert companion.socket_message(event, data) == message


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ('{"action": "cancel", "payload": {}}', "cancel"),
        ('{"action": "pause"}', "pause"),
        ('{"action": "resume", "payload": {}}', "resume"),
        ('{"action": "explode"}', None),
        ('["cancel"]', None),
        ("not json", None),
    ],
)
def test_client_action(text: str, action: str | None) -> None:
    assert companion.client_action(text) == action
