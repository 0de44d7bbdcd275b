from __future__ import annotations

import pytest

from server.protocol.media import declared_media_type, is_active


@pytest.mark.parametrize(
    ("declared", "kept"),
    [
        (None, None),
        ("", None),
        ("application/octet-stream", None),
        ("application/x-www-form-urlencoded", None),
        ("multipart/form-data; boundary=x", None),
        ("image/png", "image/png"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("not a type", None),
        ("x", None),
        ("text/plain\r\nX-Evil: 1", None),
        ("a/" + "b" * 300, None),
    ],
)
def test_declared_media_type(declared: str | None, kept: str | None) -> None:
    assert declared_media_type(declared) == kept


@pytest.mark.parametrize(
    ("content_type", "active"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("image/svg+xml", True),
        ("application/atom+xml", True),
        ("text/xml", True),
        ("text/javascript", True),
        ("application/javascript", True),
        ("image/png", False),
        ("video/mp4", False),
        ("application/pdf", False),
        ("text/plain", False),
        ("application/json", False),
    ],
)
def test_is_active(content_type: str, active: bool) -> None:
    assert is_active(content_type) is active
