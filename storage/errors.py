"""Errors a storage backend raises. The HTTP layer maps each one to a status code."""


class StorageError(Exception):
    """Base class: something the client asked for cannot be done by the store."""


class UploadNotFound(StorageError):
    """No upload with this id exists (or the id is not even well formed)."""


class UploadGone(StorageError):
    """The upload existed but was terminated or expired: tus answers 410, not 404."""


class OffsetMismatch(StorageError):
    """An append named an offset other than the upload's current one."""

    def __init__(self, expected: int, given: int) -> None:
        super().__init__(f"upload is at offset {expected}, not {given}")
        self.expected = expected
        self.given = given


class LengthExceeded(StorageError):
    """More bytes were appended than the upload's declared length allows."""

    def __init__(self, length: int) -> None:
        super().__init__(f"upload length is {length} bytes; the body goes past it")
        self.length = length


class OverLimit(StorageError):
    """A direct upload arrived larger than its limit; the store has removed it."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the upload has {size} bytes, over its limit of {limit}")
        self.size = size
        self.limit = limit


class BadParts(StorageError):
    """A completion named parts the store does not hold as named (number or ETag)."""


class UploadComplete(StorageError):
    """The upload is finished and immutable; it takes no more bytes."""


class ChecksumMismatch(StorageError):
    """A chunk's bytes did not match the checksum the client sent; nothing of it was kept."""


class LockTimeout(StorageError):
    """Another writer holds the upload and did not let go in time: the client should retry."""


class StorageUnavailable(StorageError):
    """The backend cannot be used at all (missing bucket, bad credentials): a start-up error."""


class StorageBusy(StorageError):
    """The backend is failing or throttling for now (S3's 5xx and SlowDown, the network),
    after the SDK's own retries: the client should retry later."""


class StorageFull(StorageError):
    """The disk (or the quota) is full: what fit is kept where that is the contract (a tus
    PATCH), and the rest may be retried once there is room."""


class StorageReadOnly(StorageError):
    """The storage refuses writes: a read-only mount."""


class TempSpaceFull(StorageError):
    """Parts waiting for upload filled the temp directory's cap and none freed in time."""
