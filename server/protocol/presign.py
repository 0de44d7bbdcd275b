"""What Uppy's `@uppy/aws-s3` sends to the Companion-shaped `/s3/` routes, parsed strictly.

Companion trusts what the client says; spigot parses it here, without I/O, and the routes
then check it against the upload's binding (key, owner, multipart id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .numerals import is_digits

MAX_PARTS = 10_000  # S3's part numbers are 1-10,000
MAX_BATCH = 1_000  # part URLs signed in one batch request
MAX_METADATA = 50
_METADATA_KEY = re.compile(r"metadata\[([A-Za-z0-9_.-]{1,64})\]")


class PresignError(ValueError):
    """The request is malformed: a 400 whose message the user sees in Uppy."""


def part_number(value: str) -> int:
    if not is_digits(value) or not 1 <= int(value) <= MAX_PARTS:
        raise PresignError(f"part numbers are 1 to {MAX_PARTS}, not {value[:20]!r}")
    return int(value)


def part_numbers(value: str | None) -> list[int]:
    """`partNumbers=1,2,3` of the batch route."""
    if not value:
        raise PresignError("partNumbers is required, e.g. partNumbers=1,2")
    numbers = [part_number(v.strip()) for v in value.split(",")]
    if len(numbers) > MAX_BATCH:
        raise PresignError(f"at most {MAX_BATCH} parts per batch")
    return sorted(set(numbers))


def query_metadata(query: Mapping[str, str]) -> dict[str, str]:
    """`metadata[name]=value` pairs of `GET /s3/params`."""
    found = {}
    for key, value in query.items():
        match = _METADATA_KEY.fullmatch(key)
        if match is not None:
            found[match.group(1)] = value[:1024]
    if len(found) > MAX_METADATA:
        raise PresignError(f"at most {MAX_METADATA} metadata fields")
    return found


def body_metadata(value: Any) -> dict[str, str]:
    """The `metadata` object of `POST /s3/multipart`: string values kept, others dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PresignError("metadata must be an object")
    found = {
        str(k)[:64]: v[:1024]
        for k, v in value.items()
        if isinstance(v, str) and _METADATA_KEY.fullmatch(f"metadata[{k}]")
    }
    if len(found) > MAX_METADATA:
        raise PresignError(f"at most {MAX_METADATA} metadata fields")
    return found


def completed_parts(body: Any) -> list[tuple[int, str]]:
    """`{"parts": [{"PartNumber": 1, "ETag": "..."}]}` of the complete route."""
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list) or not parts or len(parts) > MAX_PARTS:
        raise PresignError('the body must be {"parts": [{"PartNumber", "ETag"}, ...]}')
    out = []
    for part in parts:
        if not isinstance(part, dict):
            raise PresignError("each part must be an object")
        number, etag = part.get("PartNumber"), part.get("ETag")
        if isinstance(number, bool) or not isinstance(number, int | str):
            raise PresignError("PartNumber must be a number")
        if not isinstance(etag, str) or not 0 < len(etag) <= 200:
            raise PresignError("ETag must be a string")
        out.append((part_number(str(number)), etag))
    if len({n for n, _ in out}) != len(out):
        raise PresignError("a part number is listed twice")
    return sorted(out)


def upload_id_of_key(key: str | None) -> str:
    """The spigot id a key names (`prefix/{id}`); the caller checks it is the bound key."""
    if not key:
        raise PresignError("key is required")
    return key.rsplit("/", 1)[-1]
