"""Client-supplied file names, made safe to store, list and echo back in headers.

Names are display metadata only (files are stored under their id), but they still flow into
Content-Disposition, JSON and logs, so they are reduced to one harmless path component.
"""

import unicodedata

MAX_NAME_BYTES = 255  # the usual filesystem limit; clients that save the file will need it
DEFAULT_NAME = "upload"


def sanitize_name(raw: str | None, default: str = DEFAULT_NAME) -> str:
    """Return a single, printable path component derived from `raw`, or `default`.

    Directory parts are dropped (both separators, since Windows browsers send C:\\x\\y.txt),
    control and format characters removed, separators folded to spaces, and a name made
    only of dots refused, so the result can never be `..` or contain a separator.
    """
    if not raw:
        return default
    name = unicodedata.normalize("NFC", raw)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Drop control/format characters; fold every Unicode separator (NBSP, U+2028, ...) to a
    # plain space, so a name can never break a header or a log line.
    name = "".join(
        " " if unicodedata.category(ch)[0] == "Z" else ch
        for ch in name
        if unicodedata.category(ch)[0] != "C"
    )
    name = name.strip()
    if not name.strip("."):
        return default
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        keep_ext = dot and 0 < len(ext.encode()) <= 16
        budget = MAX_NAME_BYTES - (len(ext.encode()) + 1 if keep_ext else 0)
        head = (stem if keep_ext else name).encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = f"{head}.{ext}" if keep_ext else head
    return name
