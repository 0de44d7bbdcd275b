"""A listing in pages: `?limit=N` and `?after=<id>`, as S3's ListObjectsV2 has `MaxKeys` and
`StartAfter`; or, with `?order=newest`, the newest files first and `?before=` a cursor.

The cursor is where the last page ended, not an offset: a page picks up after it however
many uploads came or went in between. In id order the store answers from where it is (S3
from the key, the local store with one scan), so page 1,000 costs what page 1 does. The
next page's URL goes out in `Link: <...>; rel="next"` (RFC 8288, as GitHub's API pages), so
the body keeps the shape a client of the whole listing already reads.

Newest first is what a person looking for what they added last wants, and no store keeps
that order: a directory lists in its own, S3 in key order. So every page of it is one pass
over the whole listing that keeps only the `limit` newest older than the cursor
(`NewestFirst`), in memory bounded by the page, not by the collection. That pass counts
what it saw too, which is how `X-Total-Count` comes free with it.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

from storage.ids import is_valid_id

from .numerals import is_digits

MAX_LIMIT = 1000  # S3's MaxKeys: a page held whole, so bounded

# A created time as repr() writes time.time(): digits, a point, digits. Not float()'s whole
# grammar, which reads "nan", "inf" and "1e999" too.
_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,20})?")

Key = tuple[float, str]  # (created, id): unique, since ids are
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """A page in id order."""

    limit: int
    after: str  # "" for the first page


@dataclass(frozen=True)
class NewestPage:
    """A page newest first; `before` is the last page's last file, None for the first."""

    limit: int
    before: Key | None = None


def parse_page(query: Mapping[str, str]) -> Page | NewestPage | None:
    """The page asked for, or None for the whole listing (no paging parameter given).
    Raises ValueError, with what is wrong, for a limit, order or cursor that cannot be one."""
    order = query.get("order", "id")
    if order not in ("id", "newest"):
        raise ValueError("order must be id or newest")
    limit = _limit(query.get("limit"))
    if order == "newest":
        if "after" in query:
            raise ValueError("after must not be given with order=newest; before is its cursor")
        before = query.get("before")
        return NewestPage(limit or MAX_LIMIT, parse_cursor(before) if before else None)
    if "before" in query:
        raise ValueError("before must go with order=newest; in id order the cursor is after")
    after = query.get("after")
    if limit is None and after is None:
        return None
    if after and not is_valid_id(after):
        raise ValueError("after must be a file id, as the last page's last one")
    return Page(limit or MAX_LIMIT, after or "")


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    if not (is_digits(text) and len(text) < 8 and 1 <= int(text) <= MAX_LIMIT):
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def format_cursor(key: Key) -> str:
    """`before=` for the page after the one that ended at `key`; repr() writes the float
    so that float() reads back exactly the same one."""
    created, file_id = key
    return f"{created!r}~{file_id}"


def parse_cursor(text: str) -> Key:
    seconds, _, file_id = text.rpartition("~")
    if not (_SECONDS.fullmatch(seconds) and is_valid_id(file_id)):
        raise ValueError("before must be the cursor a last page's Link gave")
    return float(seconds), file_id  # twelve digits at most before the point: finite


def next_link(collection_url: str, page: Page, last_id: str, keep: Mapping[str, str]) -> str:
    """The `Link` header value for the page after the one that ended at `last_id`; `keep`
    are the other query parameters the listing was asked with (an admin's `owner`)."""
    query = urlencode({**keep, "limit": page.limit, "after": last_id})
    return f'<{collection_url}?{query}>; rel="next"'


def next_newest_link(
    collection_url: str, page: NewestPage, last: Key, keep: Mapping[str, str]
) -> str:
    query = urlencode({**keep, "order": "newest", "limit": page.limit})
    return f'<{collection_url}?{query}&before={format_cursor(last)}>; rel="next"'


class NewestFirst(Generic[T]):
    """One page of a listing newest first, chosen in one pass over it in any order.

    A min-heap holds the `limit + 1` newest keys older than the cursor (the one over the
    page says whether there is a next page), so what is held is bounded by the page.
    """

    def __init__(self, page: NewestPage) -> None:
        self._page = page
        self._heap: list[Key] = []
        self._held: dict[str, T] = {}
        self.seen = 0  # every key offered, the cursor's side of it or not

    def offer(self, key: Key, item: T) -> None:
        self.seen += 1
        before = self._page.before
        if before is not None and key >= before:
            return
        if len(self._heap) <= self._page.limit:
            heapq.heappush(self._heap, key)
        elif key > self._heap[0]:
            del self._held[heapq.heapreplace(self._heap, key)[1]]
        else:
            return
        self._held[key[1]] = item

    def page(self) -> tuple[list[T], Key | None]:
        """The page's items, newest first, and the cursor for the next page (None when this
        is the last)."""
        keys = sorted(self._heap, reverse=True)
        shown = keys[: self._page.limit]
        more = len(keys) > len(shown)
        return [self._held[key[1]] for key in shown], shown[-1] if more else None
