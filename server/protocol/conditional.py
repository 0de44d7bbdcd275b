"""Conditional requests (RFC 9110 section 13) as a pure decision over headers and validators.

The precedence is the RFC's (13.2.2): If-Match, else If-Unmodified-Since; then If-None-Match,
else If-Modified-Since; and If-Range only decides whether a Range is honoured at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc excludes DQUOTE, controls and space
_ETAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


class Outcome(Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"  # 304
    PRECONDITION_FAILED = "precondition_failed"  # 412


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str  # strong, quoted: '"abc"'
    last_modified: datetime  # whole seconds, UTC

    def http_last_modified(self) -> str:
        return http_date(self.last_modified)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An IMF-fixdate (or obsolete form) to an aware datetime; None if absent or invalid."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" and the obsolete forms are defined as GMT
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """A comma list of entity-tags as (is_weak, opaque-tag); None if any element is invalid."""
    tags: list[tuple[bool, str]] = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        match = _ETAG.match(value, pos)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        pos = match.end()
    return tags


def _matches(header: str, etag: str, *, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    tags = parse_etags(header)
    if not tags:
        return False
    # Our own tags are always strong, so a strong comparison just rejects W/ candidates.
    return any(tag == etag and (weak or not is_weak) for is_weak, tag in tags)


def evaluate(method: str, headers: Mapping[str, str], v: Validators) -> Outcome:
    """What a request with these headers gets for a resource with these validators."""
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _matches(if_match, v.etag, weak=False):
            return Outcome.PRECONDITION_FAILED
    else:
        since = parse_http_date(headers.get("If-Unmodified-Since"))
        if since is not None and v.last_modified > since:
            return Outcome.PRECONDITION_FAILED

    if_none_match = headers.get("If-None-Match")
    safe = method in ("GET", "HEAD")
    if if_none_match is not None:
        if _matches(if_none_match, v.etag, weak=True):
            return Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
    elif safe:
        since = parse_http_date(headers.get("If-Modified-Since"))
        if since is not None and v.last_modified <= since:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def range_allowed(headers: Mapping[str, str], v: Validators) -> bool:
    """If-Range: honour Range only if the client's copy is still current.

    An entity-tag needs a strong, exact match (a weak tag never matches); a date must equal
    Last-Modified exactly. Anything unparseable means "send it all", the safe answer.
    """
    if_range = headers.get("If-Range")
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        tags = parse_etags(value)
        return tags is not None and len(tags) == 1 and tags[0] == (False, v.etag)
    moment = parse_http_date(value)
    return moment is not None and moment == v.last_modified
