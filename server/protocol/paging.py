"""A listing in pages: `?limit=N` and `?after=<id>`, as S3's ListObjectsV2 has `MaxKeys` and
`StartAfter`.

The cursor is the last id a page held, not an offset: a page picks up after it however many
uploads came or went in between, and the store answers from where it is (S3 from the key,
the local store with one scan), so page 1,000 costs what page 1 does. The next page's URL
goes out in `Link: <...>; rel="next"` (RFC 8288, as GitHub's API pages), so the body keeps
the shape a client of the whole listing already reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from storage.ids import is_valid_id

from .numerals import is_digits

MAX_LIMIT = 1000  # S3's MaxKeys: a page held whole, so bounded


@dataclass(frozen=True)
class Page:
    limit: int
    after: str  # "" for the first page


def parse_page(query: Mapping[str, str]) -> Page | None:
    """The page asked for, or None for the whole listing (neither parameter given).
    Raises ValueError, with what is wrong, for a limit or cursor that cannot be one."""
    limit_text = query.get("limit")
    after = query.get("after")
    if limit_text is None and after is None:
        return None
    limit = MAX_LIMIT
    if limit_text is not None:
        short = is_digits(limit_text) and len(limit_text) < 8
        if not (short and 1 <= int(limit_text) <= MAX_LIMIT):
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(limit_text)
    if after and not is_valid_id(after):
        raise ValueError("after must be a file id, as the last page's last one")
    return Page(limit, after or "")


def next_link(collection_url: str, page: Page, last_id: str, keep: Mapping[str, str]) -> str:
    """The `Link` header value for the page after the one that ended at `last_id`; `keep`
    are the other query parameters the listing was asked with (an admin's `owner`)."""
    query = urlencode({**keep, "limit": page.limit, "after": last_id})
    return f'<{collection_url}?{query}>; rel="next"'
