"""Content-Disposition: reading a file name from a request, writing one into a response."""

from __future__ import annotations

import warnings
from urllib.parse import quote

from aiohttp.multipart import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    content_disposition_filename,
    parse_content_disposition,
)

# aiohttp warns about every malformed header it meets; those come from clients, are handled
# here (no file name), and are no concern of the operator's logs.
warnings.filterwarnings("ignore", category=BadContentDispositionHeader)
warnings.filterwarnings("ignore", category=BadContentDispositionParam)


def filename_from_header(value: str | None) -> str | None:
    """The file name a Content-Disposition header carries, preferring RFC 6266 filename*.

    aiohttp's RFC 2231/6266 parser does the work; this only makes it total, because the
    header is client input and must never turn into a 500.
    """
    if not value:
        return None
    try:
        _, params = parse_content_disposition(value)
        return content_disposition_filename(params, "filename")
    except (ValueError, LookupError, UnicodeError):
        return None


def header_for(name: str, *, attachment: bool) -> str:
    """`inline` or `attachment`, with an ASCII fallback and RFC 6266 filename* if needed."""
    kind = "attachment" if attachment else "inline"
    # The fallback avoids what naive parsers trip on (quotes, backslashes, and ';', which
    # some split on even inside quotes); filename* then carries the exact name.
    unsafe = '"\\%;'
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in unsafe else "_" for ch in name)
    header = f'{kind}; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
