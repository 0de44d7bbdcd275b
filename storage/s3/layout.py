"""Where an upload's bytes live in a bucket, and what the listed parts say: pure functions.

Objects of one upload `{id}` under the prefix, as in tusd's s3store:

- `{id}.info`     the UploadInfo as JSON (the multipart upload's id is in `backend`);
- `{id}`          the object itself, once complete (a multipart upload until then);
- `{id}.part`     a tail too small to be a part, kept until the next append;
- `{id}.lock`     the lease of the instance now writing the upload (see lease.py);
- `{id}.release`  a waiter's request that the holder let go;
- `{id}.gone`     a tombstone, so a terminated or expired id answers 410, not 404.

Every part but the last is exactly `part_size` bytes, fixed when the upload is created. So a
part's byte range follows from its number alone, and a part that finished uploading after an
earlier one failed (a crash mid-pipeline) holds the right bytes for its place: it is never
stale, only early. The offset is the run of parts from 1 with no gap, plus the tail if the
tail starts where that run ends.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20
MIN_PART = 5 * MIB  # S3's minimum for every part but the last
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_OBJECT = 5 * 1024**4  # S3's largest object: the part size for an unbounded upload
LIST_PAGE = 1000  # ListParts and ListObjectsV2 return at most this many per call

SUFFIXES = ("info", "part", "lock", "release", "gone")


def part_size(max_length: int | None, preferred: int) -> int:
    """The size of every part but the last: `preferred`, unless that would need more than
    10,000 parts for the longest the upload may become. Whole MiB, at least 5 MiB."""
    longest = max_length if max_length else MAX_OBJECT
    needed = -(-longest // MAX_PARTS)
    size = max(preferred, MIN_PART, needed)
    size = -(-size // MIB) * MIB
    if size > MAX_PART:
        raise ValueError(f"{longest} bytes cannot fit in {MAX_PARTS} parts of at most 5 GiB")
    return size


@dataclass(frozen=True, slots=True)
class Part:
    number: int
    size: int
    etag: str
    checksum: str = ""  # base64 CRC32, which S3 verified on arrival ("" on older uploads)

    def completed(self) -> dict[str, int | str]:
        """The part as CompleteMultipartUpload lists it."""
        entry: dict[str, int | str] = {"PartNumber": self.number, "ETag": self.etag}
        if self.checksum:
            entry["ChecksumCRC32"] = self.checksum
        return entry


@dataclass(frozen=True, slots=True)
class Tail:
    start: int  # the upload offset its first byte belongs at
    size: int


@dataclass(frozen=True, slots=True)
class Progress:
    """What is safely stored: `parts` from number 1 with no gap, then maybe the tail."""

    parts: tuple[Part, ...]
    tail: Tail | None  # only a tail that continues the parts; others are leftovers

    @property
    def parts_size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def offset(self) -> int:
        return self.parts_size + (self.tail.size if self.tail else 0)

    @property
    def next_number(self) -> int:
        return len(self.parts) + 1


def progress(listed: list[Part], size: int, length: int | None, tail: Tail | None) -> Progress:
    """Read the offset from the listed parts and the tail object.

    A part counts if every lower number is there and all but the last of the run are full
    `size` parts; a short part may only end the upload (`length`). Parts past a gap are
    uploads of the right bytes that finished early; they count once the gap is filled.
    """
    by_number = {p.number: p for p in listed}
    run: list[Part] = []
    end = 0
    while (part := by_number.get(len(run) + 1)) is not None:
        if part.size != size and not (length is not None and end + part.size == length):
            break  # not a part this layout would write: stop before it
        run.append(part)
        end += part.size
        if part.size != size:
            break  # the short last part
    if tail is not None and (tail.start != end or (run and run[-1].size != size)):
        tail = None
    return Progress(tuple(run), tail)


def key(prefix: str, upload_id: str, suffix: str = "") -> str:
    name = f"{upload_id}.{suffix}" if suffix else upload_id
    return f"{prefix}/{name}" if prefix else name


def split_key(prefix: str, object_key: str) -> tuple[str, str] | None:
    """(id, suffix) of one of our keys under `prefix`, or None for anything else."""
    if prefix:
        if not object_key.startswith(prefix + "/"):
            return None
        object_key = object_key[len(prefix) + 1 :]
    stem, dot, suffix = object_key.partition(".")
    if "/" in stem or (dot and suffix not in SUFFIXES):
        return None
    return stem, suffix
