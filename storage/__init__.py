"""Storage backends behind one interface; see `storage.base` for the contract."""

from .base import (
    Concatenator,
    DataStore,
    DirectStore,
    LocalFile,
    Locker,
    Presigner,
    Pruner,
    StoredPart,
    Upload,
    UploadInfo,
    UploadSpec,
)
from .errors import (
    LengthExceeded,
    OffsetMismatch,
    OverLimit,
    StorageError,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from .local import LocalStore

__all__ = [
    "Concatenator",
    "DataStore",
    "DirectStore",
    "LengthExceeded",
    "LocalFile",
    "LocalStore",
    "Locker",
    "OffsetMismatch",
    "OverLimit",
    "Presigner",
    "Pruner",
    "StorageError",
    "StoredPart",
    "Upload",
    "UploadComplete",
    "UploadGone",
    "UploadInfo",
    "UploadNotFound",
    "UploadSpec",
]
