"""Request bodies: bounded streams of chunks through aiohttp (`chunks`), or, for a store that
writes files, taken from the socket into the file in a pool thread (`direct`)."""

from .chunks import (
    MOVED,
    RECEIVE,
    Meter,
    RawBody,
    arriving,
    broken_body,
    check_declared_length,
    close_after_move,
    discard_part,
    part_chunks,
    raw_chunks,
    read_json,
    stalled,
    too_large,
)

__all__ = [
    "MOVED",
    "RECEIVE",
    "Meter",
    "RawBody",
    "arriving",
    "broken_body",
    "check_declared_length",
    "close_after_move",
    "discard_part",
    "part_chunks",
    "raw_chunks",
    "read_json",
    "stalled",
    "too_large",
]
