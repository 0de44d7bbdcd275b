"""The Range request header (RFC 9110 section 14), as a pure function of header and size.

aiohttp's `request.http_range` understands one range only, so this is written here; it is
small, total (any input yields a decision, never an exception) and fuzzed in the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# nginx's defaults: past this many ranges, or when the ranges add up to more than the
# representation (overlap abuse), the Range header is ignored and the full 200 is sent.
MAX_RANGES: Final = 16

_SPEC = re.compile(r"(\d*)-(\d*)")  # digits only: no signs, spaces or "0x" sneak through
# The form nearly every resuming or segmenting client sends, decided without the general path.
_SIMPLE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range, as Content-Range writes it."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """No requested range overlaps the representation: answer 416 with `bytes */size`."""


UNSATISFIABLE: Final = Unsatisfiable()

RangeDecision = list[ByteRange] | Unsatisfiable | None
"""None: send the whole representation (no Range, or one to ignore)."""


def parse_range(header: str | None, size: int) -> RangeDecision:
    """Decide what a GET with this Range header gets, for a representation of `size` bytes.

    Returns None when the header is absent, invalid, of another unit or one to ignore, a
    non-empty sorted list of coalesced ranges when it is satisfiable, else UNSATISFIABLE.
    An empty representation ignores Range: no byte range of it exists to send or refuse.
    """
    if header is None or size <= 0:
        return None
    simple = _SIMPLE.fullmatch(header)
    if simple is not None:
        first = int(simple.group(1))
        last_s = simple.group(2)
        if last_s and int(last_s) < first:
            return None
        if first >= size:
            return UNSATISFIABLE
        return [ByteRange(first, min(int(last_s), size - 1) if last_s else size - 1)]
    unit, eq, spec_list = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec_list.split(",")]
    specs = [s for s in specs if s]  # RFC 9110 5.6.1: empty list elements are ignored
    if not specs or len(specs) > MAX_RANGES:
        return None
    wanted: list[ByteRange] = []
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None:
            return None
        first_s, last_s = match.groups()
        if first_s:
            first = int(first_s)
            if last_s and int(last_s) < first:
                return None  # a syntactically invalid range-spec invalidates the header
            if first >= size:
                continue  # unsatisfiable on its own; others may still be satisfiable
            last = min(int(last_s), size - 1) if last_s else size - 1
        elif last_s:
            suffix = int(last_s)
            if suffix == 0:
                continue
            first, last = max(0, size - suffix), size - 1
        else:
            return None  # a bare "-"
        wanted.append(ByteRange(first, last))
    if not wanted:
        return UNSATISFIABLE
    if sum(r.length for r in wanted) > size:
        return None
    return coalesce(wanted)


def coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Sort ranges and merge those that overlap or touch, as RFC 9110 14.1.2 allows."""
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: r.first):
        if merged and r.first <= merged[-1].last + 1:
            last = merged[-1]
            merged[-1] = ByteRange(last.first, max(last.last, r.last))
        else:
            merged.append(r)
    return merged
