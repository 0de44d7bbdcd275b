"""Request bodies: bounded streams of chunks through aiohttp (`chunks`), or, for a store that
writes files, taken from the socket into the file in a pool thread (`direct`)."""

from .chunks import (
    CONTINUE_DUE,
    MOVED,
    RECEIVE,
    Meter,
    RawBody,
    arriving,
    broken_body,
    check_declared_length,
    close_if_body_unread,
    continue_if_due,
    discard_part,
    form_reader,
    part_chunks,
    raw_chunks,
    read_json,
    send_continue,
    stalled,
    too_large,
)
from .md5 import md5_checked

__all__ = [
    "CONTINUE_DUE",
    "MOVED",
    "RECEIVE",
    "Meter",
    "RawBody",
    "arriving",
    "broken_body",
    "check_declared_length",
    "close_if_body_unread",
    "continue_if_due",
    "discard_part",
    "form_reader",
    "md5_checked",
    "part_chunks",
    "raw_chunks",
    "read_json",
    "send_continue",
    "stalled",
    "too_large",
]
