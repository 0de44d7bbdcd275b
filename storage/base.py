"""The one interface every storage backend implements, modelled on tusd's DataStore/Upload.

The HTTP layer (`server/`) speaks protocols and knows nothing of disks or buckets; a backend
knows nothing of HTTP. Everything an upload goes through, one-shot or resumable, is the same
four steps: `create` it, `append` byte streams at its offset, `finish` it, then `read` ranges.

What only some backends can do is an optional capability, a small Protocol the server
discovers with `isinstance` at run time (as tusd's handler type-asserts its optional store
interfaces), never assumes:

- `LocalFile`:     the upload's bytes are a local file, so downloads can use sendfile.
- `Concatenator`:  build a final upload from partial ones without copying through the server.
- `Presigner`:     hand out URLs the client uses to talk to the backend directly.
- `Locker`:        exclusive access to one upload across processes or instances.
- `Pruner`:        drop old tombstones and leftover lock files.
- `DirectStore`:   uploads whose bytes skip the HTTP layer's streaming path ("direct"),
                   bound to a key, registered when the backend holds them.
- `DirectSigner`:  the client reaches the backend itself, with presigned requests (S3).
- `PartReceiver`:  the server receives a direct upload's parts itself (local disk).

One capability belongs to what the server hands a store rather than to the store:

- `MovableBody`:   a body whose bytes can move from the network into a file inside the
                   kernel (splice), for a store that writes files (local disk).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from .errors import StorageError
from .hashing import ChunkVerifier


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """What a client asks for when it starts an upload; the store assigns id and times."""

    name: str
    content_type: str | None = None
    length: int | None = None  # None: deferred, declared later (tus creation-defer-length)
    metadata: dict[str, str] = field(default_factory=dict)  # tus Upload-Metadata, decoded
    expires: float | None = None  # unix time after which an unfinished upload may be swept
    partial: bool = False  # tus concatenation: a part of a later final upload
    # The most a deferred-length upload may become (a cap the server enforces). A backend
    # that must lay out an upload in advance (S3's 10,000 parts) plans for this much.
    max_length: int | None = None
    # Who the upload belongs to (the token's `sub`): opaque to the store, recorded with it.
    owner: str | None = None
    # The most a deferred-length upload may hold for its creator, when that is below the
    # server's own cap (a token's or an upload link's limit); kept so later requests obey it.
    limit: int | None = None
    # Whether the store computes the file's sha256; None leaves it to the store's default
    # (--checksum). True where something will check it (a draft creation's Repr-Digest).
    sha256: bool | None = None


@dataclass(slots=True)
class UploadInfo:
    """Everything known about one upload; persisted by the backend next to the bytes."""

    id: str
    name: str
    content_type: str | None
    length: int | None
    offset: int
    created: float
    expires: float | None = None
    completed: float | None = None
    sha256: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    partial: bool = False
    parts: list[str] = field(default_factory=list)  # ids a final concatenation was built from
    finish_announced: bool = False  # post-finish hooks ran (see server/lifecycle/)
    owner: str | None = None  # see UploadSpec.owner
    limit: int | None = None  # see UploadSpec.limit
    # A direct upload's kind ("post" or "multipart"): its bytes go straight to the backend,
    # never through spigot, which registers the upload once the backend holds them.
    direct: str | None = None
    # The backend's own strong validator, for an upload whose sha256 nobody computed (a
    # direct upload): never a hash that was not computed.
    etag: str | None = None
    # Whether the store computes this upload's sha256 (--checksum none turns it off). Fixed
    # at creation, so a restart with another setting changes no upload already under way.
    hashed: bool = True
    backend: dict[str, str] = field(default_factory=dict)  # private to the backend

    @property
    def is_complete(self) -> bool:
        return self.completed is not None

    @property
    def awaits_finish(self) -> bool:
        """Every byte is stored, yet the upload is not complete: whatever stored the last
        of them died before finish() had run or ended. (A final concatenation is finished
        by its own creation, never by reaching its length.)"""
        return (
            not self.is_complete
            and not self.parts
            and self.length is not None
            and self.offset == self.length
        )

    @property
    def strong_etag(self) -> str | None:
        """The quoted strong validator of a finished upload: its sha256, else the
        backend's own ETag, else (no sha256 wanted) its id. The id is a strong validator
        too: a finished upload's bytes never change, and ids are never reused."""
        if self.sha256 is not None:
            return f'"{self.sha256}"'
        if self.etag is None and not self.hashed and self.is_complete:
            return f'"{self.id}"'
        return self.etag

    def settle_length(self) -> None:
        """Before finishing: a deferred length becomes the offset, and every byte of the
        length must be stored."""
        if self.length is None:
            self.length = self.offset
        if self.offset != self.length:
            raise StorageError(f"upload has {self.offset} of {self.length} bytes")

    @classmethod
    def new(cls, upload_id: str, spec: UploadSpec, *, hashed: bool = True) -> UploadInfo:
        """`hashed` is the store's default, which the spec may override."""
        return cls(
            id=upload_id,
            name=spec.name,
            content_type=spec.content_type,
            length=spec.length,
            offset=0,
            created=time.time(),
            expires=spec.expires,
            metadata=dict(spec.metadata),
            partial=spec.partial,
            owner=spec.owner,
            limit=spec.limit,
            hashed=hashed if spec.sha256 is None else spec.sha256,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadInfo:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Upload(ABC):
    """One upload, opened by id. Not safe for two concurrent writers: see `Locker`."""

    @property
    @abstractmethod
    def info(self) -> UploadInfo:
        """The state as of opening or of this object's last change."""

    @abstractmethod
    async def append(
        self,
        offset: int,
        chunks: AsyncIterable[bytes],
        verify: ChunkVerifier | None = None,
        *,
        last: bool = False,
    ) -> int:
        """Write `chunks` at `offset` and return the new offset.

        `last` says the stream is the rest of the upload (a one-shot body): a backend may
        then store it in its final form at once (S3: one PutObject for a small body).

        Raises OffsetMismatch unless `offset` is the current offset, and LengthExceeded as
        soon as the stream goes past a declared length. If the stream fails part-way (the
        client went away), the bytes already stored are kept and counted in the offset
        before the error propagates: a resumable client continues from there.

        With `verify`, the chunk is all or nothing: unless the whole stream arrives and
        matches, none of it is kept (ChecksumMismatch, or the stream's own error), even
        across a crash.
        """

    @abstractmethod
    async def declare_length(self, length: int) -> None:
        """Fix a deferred length (tus Upload-Defer-Length). Not below the current offset."""

    @abstractmethod
    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes in [start, end) in bounded chunks (end None: to the end)."""

    async def read_bytes(self, start: int, end: int) -> bytes:
        """The bytes in [start, end) at once, for small ranges; backends may do it faster."""
        return b"".join([chunk async for chunk in self.read(start, end)])

    @abstractmethod
    async def finish(self) -> UploadInfo:
        """Mark the upload complete once offset == length, recording its sha256.

        Idempotent: finishing a finished upload returns its info unchanged, so the
        post-finish step runs once however often a client retries.
        """

    @abstractmethod
    async def mark_finish_announced(self) -> None:
        """Record, durably, that the post-finish step ran, so a restart does not repeat it."""

    @abstractmethod
    async def delete(self, gone: str | None = None) -> None:
        """Remove the bytes and the info. Deleting a missing upload is not an error.

        With `gone` ("terminated", "expired"), a tombstone is left so that opening the id
        raises UploadGone (410) rather than UploadNotFound (404): tus clients treat the two
        differently, and only an upload that is really gone may get either.
        """


class DataStore(ABC):
    """A place uploads live: a directory, an S3 prefix."""

    # Other instances (on other machines) may write the same uploads, so what this process
    # saw is not the whole story: the server then polls the store for progress events.
    shared: bool = False

    @abstractmethod
    async def create(self, spec: UploadSpec) -> Upload:
        """Start a new, empty upload with a fresh unguessable id."""

    @abstractmethod
    async def open(self, upload_id: str) -> Upload:
        """Open an existing upload. Raises UploadNotFound for unknown or malformed ids."""

    @abstractmethod
    def list_uploads(self, after: str | None = None) -> AsyncIterator[UploadInfo]:
        """Yield every upload's info, lazily: a store may hold millions.

        With `after` (an id, or "" for the start) only the uploads whose ids sort after it
        come, in id order: a page of a listing picks up where the last one ended, however
        the store changed in between. Without it the order is the store's cheapest.
        """

    async def start(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """Prepare the backend (create directories, check credentials, clean leftovers)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """Release threads and connections."""

    @abstractmethod
    def describe(self) -> str:
        """A URL-like description for logs and the start-up line (never with secrets)."""


# Optional capabilities, discovered with isinstance().


@runtime_checkable
class LocalFile(Protocol):
    """An upload whose bytes are one local file, so a download can be zero-copy."""

    def local_path(self) -> Path: ...

    async def open_file(self) -> BinaryIO:
        """Open the bytes for reading; UploadNotFound if they are gone."""
        ...


@runtime_checkable
class Concatenator(Protocol):
    """A store that can assemble a final upload from partial ones on its own side."""

    async def concatenate(self, final: Upload, partials: Sequence[Upload]) -> UploadInfo: ...


@runtime_checkable
class Presigner(Protocol):
    """A store whose clients can download directly from it with signed URLs."""

    async def presign_download(
        self, upload: Upload, expires_in: int, content_type: str, disposition: str
    ) -> str:
        """A URL that serves the upload's bytes with these response headers."""
        ...


@runtime_checkable
class Locker(Protocol):
    """A store that can give one writer exclusive use of an upload.

    `lock(id, release)` returns an async context manager. Entering it asks the current
    holder to let go (its own `release` callback is called, as in tusd and @tus/server, so a
    PATCH hanging on a dead connection gives way) and waits; LockTimeout if that fails.
    """

    def lock(
        self, upload_id: str, release: Callable[[], None]
    ) -> AbstractAsyncContextManager[None]: ...


@runtime_checkable
class Pruner(Protocol):
    """A store that keeps bookkeeping beside uploads (tombstones, lock files) and can drop
    what no longer serves a purpose."""

    async def prune(self, now: float) -> int: ...


@runtime_checkable
class ReadyCheck(Protocol):
    """A store that can say whether it can take work now (GET /readyz): its directory is
    writable, its bucket answers."""

    async def check_ready(self) -> None:
        """Return if it can; raise StorageUnavailable saying why not."""
        ...


# operation (S3's name, e.g. UploadPart), seconds, outcome ("ok" or an error code)
CallCallback = Callable[[str, float, str], None]


@runtime_checkable
class CallObserver(Protocol):
    """A store whose remote calls can be timed by whoever runs it (spigot's metrics)."""

    def observe_calls(self, callback: CallCallback) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One part of a direct multipart upload, as the backend lists it."""

    number: int
    etag: str
    size: int


@runtime_checkable
class DirectStore(Protocol):
    """A store that clients upload to directly, with requests the server presigns.

    The server makes every key (an upload id) and binds each upload to its owner and limit
    in the upload's info; the store only signs, lists and completes, and says what it now
    holds. `kind` is "post" (one form POST) or "multipart".
    """

    async def create_direct(self, spec: UploadSpec, kind: str) -> Upload: ...

    def direct_target(self, upload: Upload) -> tuple[str, str, str | None]:
        """(bucket, key, multipart upload id) that the client writes to."""
        ...

    async def list_direct_parts(self, upload: Upload) -> list[StoredPart]: ...

    async def complete_direct(
        self, upload: Upload, parts: Sequence[tuple[int, str]], limit: int
    ) -> UploadInfo:
        """Complete the multipart upload from these (number, etag) parts and record it as
        finished; LengthExceeded, with everything aborted, when their total is over `limit`."""
        ...

    async def recognise_direct(self, upload: Upload, limit: int) -> bool:
        """Whether a POST upload's object has arrived; if so it is recorded as finished.
        LengthExceeded, with the object deleted, when it is over `limit`."""
        ...

    async def hash_direct(self, upload: Upload) -> str:
        """Read the object back once and record its sha256."""
        ...


@runtime_checkable
class DirectSigner(Protocol):
    """A DirectStore whose clients write to the backend itself with presigned requests."""

    async def presign_post(
        self, upload: Upload, content_type: str, limit: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """The URL and form fields of a POST policy for exactly this upload."""
        ...

    async def presign_part(self, upload: Upload, number: int, expires_in: int) -> str: ...


@runtime_checkable
class DurableProgress(Protocol):
    """An upload that can say, while an append runs, how far a resume would start were the
    process to die at this moment: the IETF draft's progress 104s promise the client it
    need not send those bytes again, so only bytes that would survive may be promised."""

    def durable_offset(self) -> int: ...


class ByteSink(Protocol):
    """What sees a body's bytes in order as they are stored: a hash, a tus checksum."""

    def update(self, data: bytes | memoryview) -> None: ...


@runtime_checkable
class MovableBody(Protocol):
    """The `chunks` given to `append`, when they can also be taken straight from the
    client's socket into a file in the store's pool, never passing through aiohttp's
    chunks (server/bodies/direct.py says why).

    A store that writes files may call `move_into` instead of iterating. The body then meters,
    times out and fails exactly as when iterated.
    """

    more: bool  # set by move_into: it stopped at `most` with bytes of the body left

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def movable(self) -> bool:
        """Whether `move_into` can take this body (nothing read yet, plain TCP, a length)."""
        ...

    async def move_into(
        self,
        fd: int,
        position: int,
        most: int,
        run: Callable[..., Awaitable[Any]],
        wrote: Callable[[int], None],
        sinks: Sequence[ByteSink],
    ) -> None:
        """Write up to `most` of the body's bytes into `fd` from `position` on. `run` runs a
        blocking call in the store's pool, where every write happens; each sink sees the
        written bytes in order, in that thread, before `wrote(n)` hears of n more bytes in
        the file, which it does after each write, also when the body then fails."""
        ...


@runtime_checkable
class PartReceiver(Protocol):
    """A DirectStore whose direct uploads' parts reach it through the server."""

    async def write_part(
        self, upload: Upload, number: int, chunks: AsyncIterable[bytes], md5: bytes | None = None
    ) -> StoredPart:
        """Store one part whole or not at all; a part uploaded again replaces the last.
        With `md5` (its Content-MD5, as S3's UploadPart takes it), a part whose bytes do not
        match is not stored at all (ChecksumMismatch), and an earlier one stays."""
        ...
