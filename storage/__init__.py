"""Storage backends behind one interface; see `storage.base` for the contract."""

from .base import (
    Concatenator,
    DataStore,
    LocalFile,
    Locker,
    Presigner,
    Pruner,
    Upload,
    UploadInfo,
    UploadSpec,
)
from .errors import (
    LengthExceeded,
    OffsetMismatch,
    StorageError,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from .local import LocalStore

__all__ = [
    "Concatenator",
    "DataStore",
    "LengthExceeded",
    "LocalFile",
    "LocalStore",
    "Locker",
    "OffsetMismatch",
    "Presigner",
    "Pruner",
    "StorageError",
    "Upload",
    "UploadComplete",
    "UploadGone",
    "UploadInfo",
    "UploadNotFound",
    "UploadSpec",
]
