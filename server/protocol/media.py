"""Media types a client declares for its upload, and which of them are dangerous to serve.

A stored file is served from spigot's own origin. If a client could upload `text/html` or
SVG and have it rendered there, its scripts would run with that origin's cookies and
storage: stored XSS against whatever app shares the host. Such "active" types are served
with `Content-Security-Policy: sandbox`, so they still display but run no script and get an
opaque origin; passive types (images, video, PDF) are left alone.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import re

# Types that describe how a body was sent, not what the file is.
_TRANSPORT = {
    "",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
}
_MEDIA_TYPE = re.compile(r"[\x21-\x7e]+/[\x21-\x7e]+(?:\s*;[\x20-\x7e]*)?")
_ACTIVE = re.compile(
    r"(text/html|application/xhtml\+xml|image/svg\+xml|text/xml|application/xml"
    r"|[a-z]+/[a-z.+-]*\+xml|text/javascript|application/(x-)?javascript|application/ecmascript"
    r"|text/xsl)",
)


def declared_media_type(value: str | None) -> str | None:
    """The declared type if it names what the file is; None lets the file name decide."""
    if not value:
        return None
    value = value.strip()
    essence = value.split(";", 1)[0].strip().lower()
    if essence in _TRANSPORT or len(value) > 200 or not _MEDIA_TYPE.fullmatch(value):
        return None
    return value


def served_type(declared: str | None, name: str) -> str:
    """The Content-Type a download sends: the declared type, else the name's, else bytes."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return declared or guessed or "application/octet-stream"


def is_active(content_type: str) -> bool:
    """Whether a browser would run script in a document of this type."""
    return _ACTIVE.fullmatch(content_type.split(";", 1)[0].strip().lower()) is not None


MEDIA_PATTERN = re.compile(r"[a-z0-9.+-]+/(\*|[a-z0-9.+-]+)")


def type_allowed(content_type: str, patterns: tuple[str, ...]) -> bool:
    """Whether a type's essence matches one of `patterns` (`image/png`, `video/*`), each
    of MEDIA_PATTERN's form; no patterns allow everything."""
    essence = content_type.split(";", 1)[0].strip().lower()
    return not patterns or any(fnmatch.fnmatchcase(essence, p) for p in patterns)
