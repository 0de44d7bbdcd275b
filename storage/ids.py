"""Upload ids: 128 random bits, URL-safe, and the only thing that ever names a stored file.

Because every path a backend builds comes from an id that passed `is_valid_id`, nothing a
client sends (names, headers, URLs) can reach the filesystem or an S3 key.
"""

import re
import secrets

ID_BYTES = 16  # 128 bits: unguessable, so an id is also a capability to the upload.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")  # base64url of 16 bytes, no padding


def new_id() -> str:
    """Never starting with `-`, which command lines take for an option (`spigot sign
    -xyz...`): drawn again in that one case in 64, so still about 128 bits."""
    while (made := secrets.token_urlsafe(ID_BYTES)).startswith("-"):
        pass
    return made


def is_valid_id(value: str) -> bool:
    return _ID_RE.fullmatch(value) is not None
